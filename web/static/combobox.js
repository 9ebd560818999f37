/**
 * combobox.js owns the search box's autocomplete, written to the WAI-ARIA combobox
 * pattern (list autocomplete, manual selection): suggestions appear after
 * `minChars` characters; ArrowDown/ArrowUp move through them (the input keeps focus
 * and `aria-activedescendant` names the active option); Enter picks the active one;
 * Escape closes the list, or clears the box when it is already closed; a click
 * picks too. Options are built with textContent, never markup.
 *
 * The same pattern serves the chat composer's `@` mentions, a textarea: `term` reads
 * the query at the caret (not the whole value), options are `{value, label}`, `apply`
 * inserts the pick where the term was, and Escape only closes the list (it never
 * clears a message being written). A textarea keeps its textbox role, so it gets
 * `aria-autocomplete`, `aria-controls` and `aria-activedescendant` but no
 * `aria-expanded` (`expanded: false`).
 */

/**
 * @param {HTMLInputElement} input   the element with role="combobox"
 * @param {HTMLElement} listbox      the element with role="listbox" it controls
 * @param {{suggest: (q: string) => Promise<(string|{value: string, label: string})[]>,
 *          onPick?: (value: string) => void, onClear?: () => void, minChars?: number, delay?: number,
 *          term?: (input: HTMLElement) => string|null, apply?: (value: string) => void,
 *          clearOnEscape?: boolean, expanded?: boolean}} options
 */
export function attachCombobox(input, listbox, {
  suggest, onPick = () => {}, onClear, minChars = 2, delay = 150,
  term = (field) => field.value.trim(), apply = (value) => { input.value = value; },
  clearOnEscape = true, expanded = true,
}) {
  let options = [];
  let values = [];
  const setExpanded = (open) => {
    if (expanded) input.setAttribute('aria-expanded', String(open));
  };
  let active = -1;
  let timer;
  // Bumped whenever the list is closed or refilled, so a late answer cannot reopen it.
  let generation = 0;

  const isOpen = () => !listbox.hidden;

  function close() {
    generation += 1;
    clearTimeout(timer);
    listbox.hidden = true;
    setExpanded(false);
    input.removeAttribute('aria-activedescendant');
    active = -1;
  }

  function setActive(index) {
    active = index;
    options.forEach((option, i) => option.setAttribute('aria-selected', String(i === index)));
    if (index >= 0) {
      input.setAttribute('aria-activedescendant', options[index].id);
      options[index].scrollIntoView({ block: 'nearest' });
    } else {
      input.removeAttribute('aria-activedescendant');
    }
  }

  function show(found) {
    values = found;
    listbox.replaceChildren();
    options = found.map((found, i) => {
      const { value, label } = typeof found === 'string' ? { value: found, label: found } : found;
      const option = document.createElement('li');
      option.id = `${listbox.id}-option-${i}`;
      option.setAttribute('role', 'option');
      option.setAttribute('aria-selected', 'false');
      option.textContent = label;
      option.dataset.value = value;
      listbox.append(option);
      return option;
    });
    active = -1;
    input.removeAttribute('aria-activedescendant');
    if (options.length === 0) {
      listbox.hidden = true;
      setExpanded(false);
    } else {
      listbox.hidden = false;
      setExpanded(true);
    }
  }

  function pick(value) {
    apply(value);
    close();
    onPick(value);
  }

  async function refresh() {
    const query = term(input);
    if (query == null || [...query].length < minChars) {
      close();
      return;
    }
    const mine = ++generation;
    try {
      const values = await suggest(query);
      if (mine === generation && document.activeElement === input) show(values);
    } catch {
      // Suggestions are a convenience: the live search reports real failures.
      if (mine === generation) close();
    }
  }

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, delay);
  });

  input.addEventListener('keydown', (event) => {
    switch (event.key) {
      case 'ArrowDown':
        // Not in a term (a textarea's caret on another line): the key moves the caret.
        if (!isOpen() && term(input) == null) return;
        event.preventDefault();
        if (!isOpen()) {
          if (options.length) show(values);
          else refresh();
          if (options.length) setActive(0);
          return;
        }
        setActive(active + 1 >= options.length ? 0 : active + 1);
        return;
      case 'ArrowUp':
        if (!isOpen()) return;
        event.preventDefault();
        setActive(active <= 0 ? options.length - 1 : active - 1);
        return;
      case 'Enter':
        if (isOpen() && active >= 0) {
          event.preventDefault();
          pick(options[active].dataset.value);
        } else {
          close();
        }
        return;
      case 'Escape':
        if (isOpen()) {
          event.preventDefault();
          close();
        } else if (clearOnEscape && input.value) {
          event.preventDefault();
          input.value = '';
          onClear?.();
        }
        return;
      case 'Tab':
        close();
        return;
      default:
    }
  });

  // mousedown, not click: the input must not lose focus (and close the list) first.
  listbox.addEventListener('mousedown', (event) => {
    const option = event.target.closest('[role="option"]');
    if (!option) return;
    event.preventDefault();
    pick(option.dataset.value);
  });

  input.addEventListener('blur', () => close());

  return { close, isOpen };
}
