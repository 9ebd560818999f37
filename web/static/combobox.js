/**
 * combobox.js owns the search box's autocomplete, written to the WAI-ARIA combobox
 * pattern (list autocomplete, manual selection): suggestions appear after
 * `minChars` characters; ArrowDown/ArrowUp move through them (the input keeps focus
 * and `aria-activedescendant` names the active option); Enter picks the active one;
 * Escape closes the list, or clears the box when it is already closed; a click
 * picks too. Options are built with textContent, never markup.
 */

/**
 * @param {HTMLInputElement} input   the element with role="combobox"
 * @param {HTMLElement} listbox      the element with role="listbox" it controls
 * @param {{suggest: (q: string) => Promise<string[]>, onPick: (value: string) => void,
 *          onClear?: () => void, minChars?: number, delay?: number}} options
 */
export function attachCombobox(input, listbox, { suggest, onPick, onClear, minChars = 2, delay = 150 }) {
  let options = [];
  let active = -1;
  let timer;
  // Bumped whenever the list is closed or refilled, so a late answer cannot reopen it.
  let generation = 0;

  const isOpen = () => !listbox.hidden;

  function close() {
    generation += 1;
    clearTimeout(timer);
    listbox.hidden = true;
    input.setAttribute('aria-expanded', 'false');
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

  function show(values) {
    listbox.replaceChildren();
    options = values.map((value, i) => {
      const option = document.createElement('li');
      option.id = `${listbox.id}-option-${i}`;
      option.setAttribute('role', 'option');
      option.setAttribute('aria-selected', 'false');
      option.textContent = value;
      option.dataset.value = value;
      listbox.append(option);
      return option;
    });
    active = -1;
    input.removeAttribute('aria-activedescendant');
    if (options.length === 0) {
      listbox.hidden = true;
      input.setAttribute('aria-expanded', 'false');
    } else {
      listbox.hidden = false;
      input.setAttribute('aria-expanded', 'true');
    }
  }

  function pick(value) {
    input.value = value;
    close();
    onPick(value);
  }

  async function refresh() {
    const query = input.value.trim();
    if ([...query].length < minChars) {
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
        event.preventDefault();
        if (!isOpen()) {
          if (options.length) show(options.map((o) => o.dataset.value));
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
        } else if (input.value) {
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
