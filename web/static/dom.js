/**
 * dom.js builds DOM nodes for the page modules (directory.js, chat.js): elements with
 * attributes, classes and data attributes set as properties, and children appended as
 * nodes or text. Text children become text nodes, never markup, so user and server
 * text is safe to pass. [`bdi`] isolates a name or any text of unknown direction.
 */

/**
 * @param {string} tag
 * @param {{className?: string, dataset?: Record<string, string>, [attr: string]: any}} [props]
 * @param {...(Node|string)} children
 * @returns {HTMLElement}
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'className') node.className = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/**
 * Text of unknown direction (a name, an email) in an element of its own: `<bdi>`
 * isolates it, so a right-to-left name or a stray override inside it cannot reorder
 * the text around it ("Delete <name> (<email>)?").
 * @param {string} text
 * @returns {HTMLElement}
 */
export function bdi(text) {
  return el('bdi', {}, text);
}
