/**
 * directory.js is the composition root of the directory page (`/`). The server has
 * already rendered the first page and its forms work without JavaScript; this module
 * upgrades them in place:
 * - live search (debounced 300 ms, loading state, "no results"), with the
 *   autocomplete of combobox.js on the same box;
 * - create and edit in a <dialog>, with the server's 422/409 field errors inline and
 *   the buttons disabled while a request runs;
 * - delete behind a confirm <dialog>, removed at once and put back if the server
 *   refuses;
 * - infinite scroll over the API's `Link: rel="next"`, with a "Load more" button;
 * - toasts for outcomes (toasts.js); a 401 sends the user to /login (ajax.js).
 * All HTTP goes through ajax.js. Rows are built with DOM APIs and textContent only:
 * user data never passes through an HTML parser.
 * `applyDirectoryEvent` applies one change to the list; livedirectory.js feeds it every
 * change logged in the hub's `directory` room after the position the page was
 * rendered at (`data-position`), so other people's edits appear live.
 */
import client, { isAbortError, nextLink } from './ajax.js';
import { attachCombobox } from './combobox.js';
import { emailKey, matchKey } from './matchkey.js';
import { followDirectory } from './livedirectory.js';
import { toast } from './toasts.js';
import { bdi, el } from './dom.js';

const PAGE_SIZE = 50;
const SEARCH_DELAY_MS = 300;

const root = document.getElementById('directory');
const rows = document.getElementById('user-rows');
const status = document.getElementById('list-status');
const pager = document.getElementById('pager');
const searchForm = document.getElementById('search-form');
const searchInput = document.getElementById('search');

const me = Number(root.dataset.userId);
const isAdmin = root.dataset.admin === 'true';

const state = {
  search: root.dataset.search ?? '',
  /** The list's order and role filter, kept in the URL; not applied to a search. */
  view: {
    sort: root.dataset.sort || 'created',
    order: root.dataset.order || 'asc',
    role: root.dataset.role || '',
  },
  /** The API URL of the next page, or null when the list is complete. */
  next: null,
  loadingMore: false,
  /** Aborted when a new search starts, so a late page of the old list is dropped. */
  listController: new AbortController(),
  /** How many users the unfiltered list has, when known. */
  total: root.dataset.total ? Number(root.dataset.total) : null,
};

/** The query parameters of the list's order and role (none for the defaults). */
function viewParams(view = state.view) {
  const params = new URLSearchParams();
  if (view.sort !== 'created' || view.order !== 'asc') {
    params.set('sort', view.sort);
    params.set('order', view.order);
  }
  if (view.role) params.set('role', view.role);
  return params;
}

function listUrl(search, cursor) {
  // A search is listed in the order users were added, over everyone (the API
  // refuses an order or a role with it).
  const params = search ? new URLSearchParams() : viewParams();
  params.set('limit', String(PAGE_SIZE));
  if (search) params.set('search', search);
  if (cursor) params.set('cursor', cursor);
  return `/api/users?${params}`;
}

/** The page's own URL for `search`, or for the list in its order. */
function pageUrl(search) {
  const params = search ? new URLSearchParams({ search }) : viewParams();
  const query = params.toString();
  return query ? `/?${query}` : '/';
}

if (root.dataset.nextCursor) state.next = listUrl(state.search, root.dataset.nextCursor);

// ---- rows -------------------------------------------------------------------

/** " <name>" for screen readers: "Edit Ann" rather than a row of "Edit" links. */
function hidden(name) {
  return el('span', { className: 'visually-hidden' }, ' ', bdi(name));
}

/** A row like the server renders (web/templates/directory.html), so both behave alike. */
function buildRow(user) {
  const actions = el('td', { className: 'actions' });
  if (user.id !== me) {
    // A direct message with them (chat.js opens it from `?with=`).
    actions.append(el('a', { className: 'button small', href: `/chat?with=${user.id}`, dataset: { action: 'message' } }, 'Message', hidden(user.name)));
  }
  if (isAdmin || user.id === me) {
    actions.append(el('a', { className: 'button small', href: `/users/${user.id}/edit`, dataset: { action: 'edit' } }, 'Edit', hidden(user.name)));
  }
  if (isAdmin) {
    // The account page: password reset, role, tokens and sessions.
    actions.append(el('a', { className: 'button small', href: `/users/${user.id}/account`, dataset: { action: 'account' } }, 'Account', hidden(user.name)));
    const form = el('form', { method: 'get', action: `/users/${user.id}/delete`, className: 'inline', dataset: { action: 'delete' } },
      el('button', { type: 'submit', className: 'small danger' }, 'Delete', hidden(user.name)));
    actions.append(form);
  }
  const added = user.created_at ?? '';
  const row = el('tr', { dataset: { id: String(user.id), role: user.role ?? 'member', added } },
    el('td', { className: 'presence' }),
    el('td', { className: 'name', dir: 'auto' }, user.name),
    el('td', { className: 'email' }, user.email),
    el('td', { className: 'role' }, el('span', { className: 'badge' }, user.role ?? 'member')),
    el('td', { className: 'added' }, el('time', { dateTime: added }, added.slice(0, 10))),
    actions);
  showPresence(row);
  return row;
}

// ---- who is online -------------------------------------------------------------

/** The ids of people with a live connection now (the hub's `online` room). */
const online = new Set();

/** Marks `row` online or not: a dot, and the words for screen readers. */
function showPresence(row) {
  const cell = row.querySelector('td.presence');
  if (!cell) return;
  const on = online.has(Number(row.dataset.id));
  row.classList.toggle('online', on);
  if (on === (cell.dataset.online === 'true')) return;
  cell.dataset.online = String(on);
  cell.replaceChildren(...(on
    ? [el('span', { className: 'dot', title: 'Online now', 'aria-hidden': 'true' }), el('span', { className: 'visually-hidden' }, 'Online')]
    : []));
}

/** Applies the `online` room's snapshot or one arrival / departure to the rows. */
function applyOnline(change) {
  if (change.type === 'presence') {
    online.clear();
    for (const user of change.users ?? []) online.add(user.id);
    for (const row of rows.children) showPresence(row);
    return;
  }
  const id = change.user?.id;
  if (id == null) return;
  if (change.type === 'user_joined') online.add(id);
  else if (change.type === 'user_left') online.delete(id);
  const row = rowOf(id);
  if (row) showPresence(row);
}

function rowOf(id) {
  return rows.querySelector(`tr[data-id="${CSS.escape(String(id))}"]`);
}

function userOf(row) {
  return {
    id: Number(row.dataset.id),
    name: row.querySelector('td.name').textContent,
    email: row.querySelector('td.email').textContent,
    role: row.dataset.role,
    created_at: row.querySelector('td.added time')?.dateTime ?? '',
  };
}

function flash(row) {
  row.classList.add('flash');
  setTimeout(() => row.classList.remove('flash'), 1500);
}

function describeList() {
  const count = rows.children.length;
  if (count === 0) {
    status.textContent = state.search ? `No users match “${state.search}”.` : state.view.role ? 'Nobody has this role.' : 'No users yet.';
  } else if (state.search) {
    status.textContent = `${count}${state.next ? '+' : ''} ${count === 1 && !state.next ? 'match' : 'matches'} for “${state.search}”`;
  } else if (state.view.role) {
    status.textContent = `${count}${state.next ? '+' : ''} ${state.view.role === 'admin' ? 'admins' : 'members'}`;
  } else if (state.total !== null) {
    status.textContent = `${state.total} users`;
  } else {
    status.textContent = `${count}${state.next ? '+' : ''} users`;
  }
}

// ---- live search ------------------------------------------------------------

let searchTimer;
let searchSeq = 0;

function setBusy(busy) {
  root.classList.toggle('busy', busy);
  document.getElementById('users').setAttribute('aria-busy', String(busy));
}

/**
 * Loads the list for `text`; resolves with the directory room's position the new
 * list reflects (its `Switchboard-Position`), or null when it failed or was superseded.
 */
async function runSearch(text, { fresh = false } = {}) {
  clearTimeout(searchTimer);
  const search = text.trim();
  const seq = ++searchSeq;
  state.listController.abort();
  state.listController = new AbortController();
  state.search = search;
  setBusy(true);
  status.textContent = search ? `Searching for “${search}”…` : 'Loading…';
  try {
    const { data, headers } = await client.get(listUrl(search), { meta: true, supersede: 'list', cache: !fresh });
    rows.replaceChildren(...data.map(buildRow));
    state.next = nextLink(headers);
    const total = headers.get('X-Total-Count');
    state.total = total === null ? null : Number(total);
    history.replaceState(null, '', pageUrl(search));
    renderView();
    describeList();
    updatePager();
    const position = headers.get('Switchboard-Position');
    return position === null ? null : Number(position);
  } catch (error) {
    if (isAbortError(error)) return null;
    status.textContent = 'The list could not be loaded.';
    toast(error.error ?? String(error), 'error');
    return null;
  } finally {
    if (seq === searchSeq) setBusy(false);
  }
}

searchInput.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => runSearch(searchInput.value), SEARCH_DELAY_MS);
});

searchForm.addEventListener('submit', (event) => {
  event.preventDefault();
  combo.close();
  runSearch(searchInput.value);
});

const combo = attachCombobox(searchInput, document.getElementById('search-suggestions'), {
  suggest: (q) => client.get(`/api/autocomplete?${new URLSearchParams({ q })}`, { supersede: 'suggest' }),
  onPick: (value) => runSearch(value),
  onClear: () => runSearch(''),
});

// ---- sort and filter ---------------------------------------------------------

const controls = document.getElementById('list-controls');
const viewFieldset = document.getElementById('list-view');
const viewHint = document.getElementById('list-view-hint');
const sortSelect = document.getElementById('sort');
const orderSelect = document.getElementById('order');
const roleSelect = document.getElementById('role-filter');
const LABELS = { name: 'Name', email: 'Email', created: 'Added' };

/**
 * Shows the list's order and filter: each sortable header's `aria-sort` and link
 * (sorted by it ascending, or descending when it already is), the form's choices;
 * while a search is shown, plain headers and a disabled form (a search has its own
 * order), as the server renders them.
 */
function renderView() {
  const { sort, order, role } = state.view;
  const searching = Boolean(state.search);
  for (const th of document.querySelectorAll('#users th[data-sort]')) {
    const column = th.dataset.sort;
    const label = LABELS[column];
    if (searching) {
      th.removeAttribute('aria-sort');
      th.replaceChildren(label);
      continue;
    }
    const sorted = column === sort;
    th.setAttribute('aria-sort', sorted ? (order === 'asc' ? 'ascending' : 'descending') : 'none');
    const next = { sort: column, order: sorted && order === 'asc' ? 'desc' : 'asc', role };
    const params = viewParams(next);
    // The default order still names itself, so the header toggles back and forth.
    if (!params.has('sort')) { params.set('sort', next.sort); params.set('order', next.order); }
    th.replaceChildren(el('a', { className: 'sort', href: `/?${params}` }, label));
  }
  sortSelect.value = sort;
  orderSelect.value = order;
  roleSelect.value = role;
  viewFieldset.disabled = searching;
  viewHint.hidden = !searching;
}

/** Shows the list in `view` (a search, if any, is left: the list is the whole one). */
function applyView(view) {
  state.view = { ...state.view, ...view };
  searchInput.value = '';
  return runSearch('');
}

// Each choice applies at once; the button is for pages without JavaScript.
document.getElementById('apply-view').hidden = true;
for (const select of [sortSelect, orderSelect, roleSelect]) {
  select.addEventListener('change', () => applyView({ sort: sortSelect.value, order: orderSelect.value, role: roleSelect.value }));
}
controls.addEventListener('submit', (event) => {
  event.preventDefault();
  applyView({ sort: sortSelect.value, order: orderSelect.value, role: roleSelect.value });
});
document.querySelector('#users thead').addEventListener('click', (event) => {
  const link = event.target.closest('a.sort');
  if (!link) return;
  event.preventDefault();
  const params = new URL(link.href).searchParams;
  applyView({ sort: params.get('sort') ?? 'created', order: params.get('order') ?? 'asc', role: params.get('role') ?? '' })
    .then(() => document.querySelector(`#users th[data-sort="${params.get('sort')}"] a`)?.focus());
});
renderView();

/** `a` against `b` as keys: negative, zero or positive. */
const compareKeys = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Where `a` and `b` stand in the list's order: negative when `a` comes first. Names
 * tie and then go by id, like the server's keyset order; dates are ids.
 */
function compareInView(a, b) {
  const { sort, order } = state.view;
  let by = 0;
  if (sort === 'name') by = compareKeys(matchKey(a.name), matchKey(b.name));
  if (sort === 'email') by = compareKeys(emailKey(a.email), emailKey(b.email));
  if (by === 0) by = a.id - b.id;
  return order === 'desc' ? -by : by;
}

/** Whether `user` belongs in the list shown: the search's matches, or the role's. */
function belongs(user) {
  if (state.search) return matchesSearch(user);
  return !state.view.role || (user.role ?? 'member') === state.view.role;
}

/**
 * Puts a new user's row where the list's order has it. The default list (oldest
 * first) shows newcomers at the top, as it always has, so they are seen. In another
 * order a row that sorts after the last one loaded is left for the page that will
 * bring it (infinite scroll), so it is neither shown out of order nor twice.
 */
function insertRow(user) {
  const row = buildRow(user);
  const defaultOrder = !state.search && state.view.sort === 'created' && state.view.order === 'asc';
  if (state.search || defaultOrder) {
    rows.prepend(row);
    return true;
  }
  const before = [...rows.children].find((other) => compareInView(user, userOf(other)) < 0);
  if (before) {
    rows.insertBefore(row, before);
    return true;
  }
  if (state.next) return false;
  rows.append(row);
  return true;
}

// ---- infinite scroll --------------------------------------------------------

const loadMoreButton = el('button', { type: 'button', className: 'secondary', id: 'load-more' }, 'Load more');
// The server's "Next page" link is for browsers without JavaScript: the button and
// the scroll take its place here.
document.getElementById('next-page')?.remove();
pager.append(loadMoreButton);

function updatePager() {
  loadMoreButton.hidden = !state.next;
  loadMoreButton.disabled = state.loadingMore;
  loadMoreButton.textContent = state.loadingMore ? 'Loading…' : 'Load more';
}

function pagerVisible() {
  const box = pager.getBoundingClientRect();
  return box.top < window.innerHeight && box.bottom > 0;
}

async function loadMore() {
  if (state.loadingMore || !state.next) return;
  state.loadingMore = true;
  updatePager();
  const { signal } = state.listController;
  let more = false;
  try {
    const { data, headers } = await client.get(state.next, { meta: true, signal });
    // Rows that arrived meanwhile (created here, or live) are not doubled.
    rows.append(...data.filter((user) => !rowOf(user.id)).map(buildRow));
    state.next = nextLink(headers);
    describeList();
    more = true;
  } catch (error) {
    if (!isAbortError(error)) toast(error.error ?? String(error), 'error');
  } finally {
    state.loadingMore = false;
    updatePager();
  }
  // A tall screen may still show the bottom: keep filling it.
  if (more && state.next && pagerVisible()) requestAnimationFrame(() => loadMore());
}

loadMoreButton.addEventListener('click', () => loadMore());
if ('IntersectionObserver' in window) {
  new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) loadMore();
  }, { rootMargin: '200px' }).observe(pager);
}
updatePager();

// ---- create and edit in a dialog ---------------------------------------------

const dialog = document.getElementById('user-dialog');
const dialogForm = document.getElementById('dialog-form');
const dialogTitle = document.getElementById('user-dialog-title');
const dialogError = document.getElementById('dialog-error');
const dialogSubmit = document.getElementById('dialog-submit');
const fields = {
  name: document.getElementById('dialog-name'),
  email: document.getElementById('dialog-email'),
  role: document.getElementById('dialog-role'), // admins only
};
let editing = null; // null: creating; otherwise the user being edited
let saving = false;

function clearErrors() {
  dialogError.hidden = true;
  dialogError.textContent = '';
  for (const [name, input] of Object.entries(fields)) {
    if (!input) continue;
    input.removeAttribute('aria-invalid');
    document.getElementById(`dialog-${name}-error`).textContent = '';
  }
}

function openDialog(user) {
  editing = user;
  clearErrors();
  dialogTitle.replaceChildren(...(user ? ['Edit ', bdi(user.name)] : ['Add a user']));
  dialogSubmit.textContent = user ? 'Save' : 'Add user';
  fields.name.value = user?.name ?? '';
  fields.email.value = user?.email ?? '';
  if (fields.role) fields.role.value = user?.role ?? 'member';
  dialog.showModal();
  fields.name.focus();
}

function setSaving(on) {
  saving = on;
  for (const button of dialogForm.querySelectorAll('button')) button.disabled = on;
  dialogSubmit.textContent = on ? 'Saving…' : editing ? 'Save' : 'Add user';
  dialogForm.setAttribute('aria-busy', String(on));
}

function showFieldErrors(error) {
  const problems = error.fields ?? {};
  let first = null;
  // In the form's order, so focus lands on the topmost field in error.
  for (const [name, input] of Object.entries(fields)) {
    const problem = problems[name];
    if (!input || !problem) continue;
    input.setAttribute('aria-invalid', 'true');
    document.getElementById(`dialog-${name}-error`).textContent = `${name[0].toUpperCase()}${name.slice(1)} ${problem}.`;
    first ??= input;
  }
  if (!first) {
    dialogError.textContent = error.error ?? String(error);
    dialogError.hidden = false;
  }
  (first ?? fields.name).focus();
}

dialogForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (saving) return;
  clearErrors();
  const body = { name: fields.name.value, email: fields.email.value };
  if (fields.role) body.role = fields.role.value;
  const before = editing;
  setSaving(true);
  try {
    const user = before
      ? await client.patch(`/api/users/${before.id}`, body)
      : await client.post('/api/users', body);
    dialog.close();
    applyDirectoryEvent({ type: before ? 'user_updated' : 'user_created', user });
    const row = rowOf(user.id);
    if (row) flash(row);
    toast([before ? 'Saved ' : 'Added ', bdi(user.name), '.'], 'success');
  } catch (error) {
    if (isAbortError(error)) return;
    showFieldErrors(error);
  } finally {
    setSaving(false);
  }
});

dialog.querySelector('[data-close]').addEventListener('click', () => dialog.close());
// Escape during a save would hide a request still running: wait for it instead.
dialog.addEventListener('cancel', (event) => {
  if (saving) event.preventDefault();
});

const addButton = document.getElementById('add-user');
if (addButton) {
  addButton.hidden = false;
  document.getElementById('create-section').hidden = true;
  addButton.addEventListener('click', () => openDialog(null));
}

// ---- delete with confirmation and rollback ------------------------------------

const confirmDialog = document.getElementById('confirm-dialog');
const confirmText = document.getElementById('confirm-text');

function confirmDeletion(user) {
  confirmText.replaceChildren('Delete ', bdi(user.name), ' (', bdi(user.email), ')? This cannot be undone.');
  confirmDialog.returnValue = '';
  confirmDialog.showModal();
  return new Promise((resolve) => {
    confirmDialog.addEventListener('close', () => resolve(confirmDialog.returnValue === 'confirm'), { once: true });
  });
}

async function deleteRow(row) {
  const user = userOf(row);
  if (!(await confirmDeletion(user))) return;
  // Optimistic: gone at once; put back where it was if the server says no.
  const next = row.nextElementSibling;
  row.remove();
  if (state.total !== null) state.total -= 1;
  describeList();
  searchInput.focus();
  try {
    await client.delete(`/api/users/${user.id}`);
    toast(['Deleted ', bdi(user.name), '.'], 'success');
  } catch (error) {
    if (isAbortError(error)) return;
    rows.insertBefore(row, next?.parentNode === rows ? next : null);
    if (state.total !== null) state.total += 1;
    describeList();
    flash(row);
    toast([bdi(user.name), ` was not deleted: ${error.error ?? error}`], 'error');
  }
}

// ---- one listener for every row, present or future ------------------------------

rows.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-action="edit"]');
  if (!link) return;
  event.preventDefault();
  openDialog(userOf(link.closest('tr')));
});

rows.addEventListener('submit', (event) => {
  const form = event.target.closest('form[data-action="delete"]');
  if (!form) return;
  event.preventDefault();
  deleteRow(form.closest('tr'));
});

// ---- live updates ---------------------------------------------------------------

function matchesSearch(user) {
  if (!state.search) return true;
  // As the server matches (`search=`): the needle folded like a name.
  const needle = matchKey(state.search.trim());
  return matchKey(user.name).includes(needle) || emailKey(user.email).includes(needle);
}

/**
 * Applies one directory change to the list in place: `{type: 'user_created' |
 * 'user_updated' | 'user_deleted', user}` (for deletions `user` needs only `id`).
 * Used after this page's own writes, and meant for the realtime hub's `directory`
 * room: a subscriber only has to call it with each event. Touches neither the scroll
 * position nor an open dialog.
 */
export function applyDirectoryEvent(event) {
  const { type, user } = event ?? {};
  if (!user || user.id == null) return;
  keepInView(user.id, () => applyChange(type, user));
  describeList();
}

/**
 * Runs `change` to the row of user `changing` (which may add or remove it) so that the
 * row the user is looking at (the first fully in view, other than that one)
 * stays where it is on screen: a row added or removed above it moves the page by its
 * height, as if nothing happened. Browsers' own scroll anchoring does not reliably
 * pick table rows as anchors, so this measures and corrects by hand.
 */
function keepInView(changing, change) {
  const id = String(changing);
  const anchor = window.scrollY > 0
    ? [...rows.children].find((row) => row.dataset.id !== id && row.getBoundingClientRect().top >= 0)
    : null;
  const before = anchor?.getBoundingClientRect().top;
  change();
  if (!anchor?.isConnected) return;
  const moved = anchor.getBoundingClientRect().top - before;
  if (moved !== 0) window.scrollBy(0, moved);
}

function applyChange(type, user) {
  const existing = rowOf(user.id);
  if (type === 'user_deleted') {
    if (existing) {
      existing.remove();
      if (state.total !== null) state.total -= 1;
    }
  } else if (type === 'user_updated') {
    // Changed in place (a renamed row does not jump away under the reader), unless
    // it left the role shown.
    if (existing && belongs(user)) existing.replaceWith(buildRow(user));
    else if (existing) existing.remove();
  } else if (type === 'user_created') {
    if (!existing) {
      if (state.total !== null) state.total += 1;
      if (belongs(user)) insertRow(user);
    }
  }
}

// Live: others' changes, from the position the server rendered this list at. A reset
// (that position is older than the hub keeps) reloads the list and follows on from it.
const live = followDirectory({
  position: root.dataset.position === undefined || root.dataset.position === '' ? null : Number(root.dataset.position),
  apply: (event) => {
    // Cached lists and suggestions predate this change.
    client.clearCache('/api/users');
    client.clearCache('/api/autocomplete');
    applyDirectoryEvent(event);
    // A dialog editing someone just deleted elsewhere: say so, keep what was typed.
    if (event.type === 'user_deleted' && editing && editing.id === event.user?.id && dialog.open) {
      dialogError.replaceChildren(bdi(editing.name), ' was deleted by someone else.');
      dialogError.hidden = false;
    }
  },
  reload: () => runSearch(state.search, { fresh: true }),
  onOnline: applyOnline,
  onStatus: (status, transport) => {
    root.dataset.live = status;
    root.dataset.transport = transport ?? '';
  },
});
window.addEventListener('pagehide', () => live.close());

root.dataset.enhanced = 'true';
