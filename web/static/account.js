/**
 * account.js enhances the account page (`/account`, an admin's `/users/{id}/account`).
 * The server has rendered every form and each works without JavaScript; this module
 * sends the same changes through the JSON API instead, so nothing reloads:
 * - name and email (`PATCH /api/users/{id}`), the server's field errors beside the fields;
 * - the password: the policy's reasons shown as you type
 *   (`POST /api/auth/password/check`, the server's own rules: it stays the judge when
 *   the form is sent to `POST /api/auth/password`, or for an admin's reset
 *   `PATCH /api/users/{id}`);
 * - the theme, applied at once (and in the other tabs of this browser, theme.js) and
 *   saved with the notification preferences as soon as they change
 *   (`PATCH /api/users/{id}/settings`);
 * - API tokens: made through `POST /api/tokens` and shown once with a Copy button,
 *   revoked with `DELETE /api/tokens/{id}`;
 * - sessions: ended with `DELETE /api/sessions/{id}` (this one logs you out), or all
 *   the others with `DELETE /api/sessions`.
 * User and server text only ever goes in as text (dom.js).
 */
import client from './ajax.js';
import { bdi, el } from './dom.js';
import { toast } from './toasts.js';
import { announceTheme } from './theme.js';

const CHECK_DELAY_MS = 250;

const root = document.getElementById('account');
const userId = Number(root.dataset.userId);
const own = root.dataset.own === 'true';
const asAdminOf = own ? '' : `?user_id=${userId}`;

const LABELS = {
  name: 'Name',
  email: 'Email',
  role: 'Role',
  current_password: 'Current password',
  new_password: 'New password',
  token_name: 'Name',
  expires_in_days: 'Expiry',
  theme: 'Theme',
};

/** Shows `problem` beside `field` (or clears it), as the server's page would. */
function fieldError(field, problem) {
  const input = document.getElementById(field);
  const slot = document.getElementById(`${field}-error`);
  if (slot) slot.textContent = problem ? `${LABELS[field] ?? field} ${problem}.` : '';
  if (input) {
    if (problem) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }
}

/** Shows an API error on a form: its fields beside them (renamed by `rename`), else a toast. */
function showError(error, fields, rename = {}) {
  for (const field of fields) fieldError(field, null);
  const named = Object.entries(error.fields ?? {});
  if (named.length === 0) {
    toast(error.error ?? String(error), 'error');
    return;
  }
  let first = null;
  for (const [field, problem] of named) {
    const target = rename[field] ?? field;
    fieldError(target, problem);
    first ??= document.getElementById(target);
  }
  first?.focus();
}

/** Runs `work` with the form's buttons disabled. */
async function busy(form, work) {
  const buttons = [...form.querySelectorAll('button')];
  for (const b of buttons) b.disabled = true;
  try {
    return await work();
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

// ---- name and email ---------------------------------------------------------------

const profileForm = document.getElementById('profile-form');
profileForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const data = new FormData(profileForm);
  const body = { name: data.get('name'), email: data.get('email') };
  if (data.has('role')) body.role = data.get('role');
  busy(profileForm, async () => {
    try {
      const user = await client.patch(`/api/users/${userId}`, body);
      for (const field of ['name', 'email', 'role']) fieldError(field, null);
      if (own) {
        const who = document.querySelector('.who-name');
        if (who) who.textContent = user.name;
      }
      toast('Name and email saved.', 'success');
    } catch (error) {
      showError(error, ['name', 'email', 'role']);
    }
  });
});

// ---- the password -----------------------------------------------------------------

const passwordForm = document.getElementById('password-form');
const newPassword = document.getElementById('new_password');
const currentPassword = document.getElementById('current_password');
const check = document.getElementById('new_password-check');
let checkTimer = null;
let checkSeq = 0;

function showCheck(verdict) {
  check.hidden = false;
  if (verdict.acceptable) {
    check.className = 'password-check ok';
    check.replaceChildren(el('li', {}, '✓ Strong enough'));
  } else {
    check.className = 'password-check';
    check.replaceChildren(...verdict.problems.map((p) => el('li', {}, `Password ${p}.`)));
  }
}

newPassword.addEventListener('input', () => {
  clearTimeout(checkTimer);
  fieldError('new_password', null);
  const candidate = newPassword.value;
  if (!candidate) {
    check.hidden = true;
    check.replaceChildren();
    return;
  }
  checkTimer = setTimeout(async () => {
    const seq = ++checkSeq;
    try {
      const verdict = await client.post('/api/auth/password/check', { password: candidate, user_id: userId });
      // Only the answer to what is in the box now.
      if (seq === checkSeq && newPassword.value === candidate) showCheck(verdict);
    } catch {
      // The server judges on submit anyway.
    }
  }, CHECK_DELAY_MS);
});

passwordForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const fields = ['current_password', 'new_password'];
  busy(passwordForm, async () => {
    try {
      if (own) {
        const done = await client.post('/api/auth/password', {
          current_password: currentPassword.value,
          new_password: newPassword.value,
        });
        toast(`Password changed. ${done.sessions_ended} other session(s) ended, ${done.tokens_revoked} token(s) revoked.`, 'success');
        currentPassword.value = '';
      } else {
        await client.patch(`/api/users/${userId}`, { password: newPassword.value });
        toast('Password set. Their sessions and tokens have ended.', 'success');
      }
      newPassword.value = '';
      check.hidden = true;
      for (const field of fields) fieldError(field, null);
      // Sessions and tokens ended: show the lists as they are now.
      refreshLists();
    } catch (error) {
      showError(error, fields, { password: 'new_password' });
    }
  });
});

// ---- preferences ------------------------------------------------------------------

const settingsForm = document.getElementById('settings-form');
document.getElementById('settings-save').hidden = true;

function settingsBody() {
  const data = new FormData(settingsForm);
  return {
    theme: data.get('theme') ?? 'system',
    notify_mentions: data.has('notify_mentions'),
    notify_admin_changes: data.has('notify_admin_changes'),
  };
}

async function saveSettings() {
  const body = settingsBody();
  if (own) {
    // At once, before the server answers: the page is what the person just chose.
    document.documentElement.dataset.theme = body.theme;
    announceTheme(body.theme);
  }
  try {
    await client.patch(`/api/users/${userId}/settings`, body);
    fieldError('theme', null);
    toast('Preferences saved.', 'success', { timeout: 2500 });
  } catch (error) {
    showError(error, ['theme']);
  }
}

settingsForm.addEventListener('change', () => saveSettings());
settingsForm.addEventListener('submit', (event) => {
  event.preventDefault();
  saveSettings();
});

// ---- API tokens -------------------------------------------------------------------

const tokenForm = document.getElementById('token-form');
const tokenRows = document.getElementById('token-rows');
const newToken = document.getElementById('new-token');
const newTokenValue = document.getElementById('new-token-value');
const copyButton = document.getElementById('copy-token');
copyButton.hidden = false;

copyButton.addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText(newTokenValue.value);
  } catch {
    newTokenValue.select();
    document.execCommand('copy');
  }
  copyButton.textContent = 'Copied';
  toast('Token copied.', 'success', { timeout: 2500 });
});

/** An API timestamp (RFC 3339) as the server-rendered rows show one: `2026-12-01 21:05 UTC`. */
function when(timestamp) {
  if (timestamp == null) return null;
  const d = new Date(timestamp);
  if (Number.isNaN(d.getTime())) return null;
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

function tokenRow(token) {
  return el(
    'tr',
    { dataset: { id: String(token.id) } },
    el('td', { dir: 'auto' }, bdi(token.name), ' ', el('code', { className: 'prefix' }, `${token.prefix}…`)),
    el('td', { 'data-label': 'Created' }, when(token.created_at)),
    el('td', { 'data-label': 'Last used' }, when(token.last_used_at) ?? 'Never'),
    el('td', { 'data-label': 'Expires' }, when(token.expires_at) ?? 'Never'),
    el('td', { className: 'actions' }, revokeForm(token)),
  );
}

function revokeForm(token) {
  const form = el(
    'form',
    { method: 'post', action: `${root.dataset.base}/tokens/${token.id}/revoke`, className: 'inline', dataset: { action: 'revoke' } },
    el('button', { type: 'submit', className: 'small danger' }, 'Revoke', el('span', { className: 'visually-hidden' }, ' ', bdi(token.name))),
  );
  return form;
}

tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const data = new FormData(tokenForm);
  const days = data.get('expires_in_days');
  const body = { name: data.get('token_name'), user_id: userId };
  if (days && days !== 'never') body.expires_in_days = Number(days);
  busy(tokenForm, async () => {
    try {
      const created = await client.post('/api/tokens', body);
      fieldError('token_name', null);
      fieldError('expires_in_days', null);
      tokenRows.querySelector('tr.empty')?.remove();
      tokenRows.prepend(tokenRow(created));
      newTokenValue.value = created.token;
      newToken.hidden = false;
      copyButton.textContent = 'Copy';
      tokenForm.reset();
      newTokenValue.focus();
      newTokenValue.select();
    } catch (error) {
      showError(error, ['token_name', 'expires_in_days'], { name: 'token_name' });
    }
  });
});

tokenRows.addEventListener('submit', (event) => {
  const form = event.target.closest('form[data-action="revoke"]');
  if (!form) return;
  event.preventDefault();
  const row = form.closest('tr');
  busy(form, async () => {
    try {
      await client.delete(`/api/tokens/${row.dataset.id}`);
      form.replaceWith(el('span', { className: 'badge' }, 'revoked'));
      toast('Token revoked.', 'success');
    } catch (error) {
      toast(error.error ?? String(error), 'error');
    }
  });
});

// ---- sessions ---------------------------------------------------------------------

const sessionRows = document.getElementById('session-rows');

sessionRows.addEventListener('submit', (event) => {
  const form = event.target.closest('form[data-action="end-session"]');
  if (!form) return;
  event.preventDefault();
  const row = form.closest('tr');
  busy(form, async () => {
    try {
      await client.delete(`/api/sessions/${row.dataset.id}${asAdminOf}`);
      if (row.classList.contains('current')) {
        location.assign('/login');
        return;
      }
      row.remove();
      toast('Session ended.', 'success');
    } catch (error) {
      toast(error.error ?? String(error), 'error');
    }
  });
});

const endOthers = document.getElementById('end-others-form');
endOthers.addEventListener('submit', (event) => {
  event.preventDefault();
  busy(endOthers, async () => {
    try {
      const done = await client.delete(`/api/sessions${asAdminOf}`);
      for (const row of sessionRows.querySelectorAll('tr:not(.current)')) row.remove();
      toast(`${done.sessions_ended} session(s) ended.`, 'success');
    } catch (error) {
      toast(error.error ?? String(error), 'error');
    }
  });
});

/** After a password change: the sessions and tokens that ended leave the lists. */
async function refreshLists() {
  try {
    const sessions = await client.get(`/api/sessions${asAdminOf}`, { cache: false });
    const alive = new Set(sessions.map((s) => s.id));
    for (const row of sessionRows.querySelectorAll('tr[data-id]')) {
      if (!alive.has(row.dataset.id)) row.remove();
    }
    const tokens = await client.get(`/api/tokens?user_id=${userId}`, { cache: false });
    for (const token of tokens) {
      const row = tokenRows.querySelector(`tr[data-id="${token.id}"]`);
      const form = row?.querySelector('form[data-action="revoke"]');
      if (form && token.revoked_at != null) form.replaceWith(el('span', { className: 'badge' }, 'revoked'));
    }
  } catch {
    // The lists are right again at the next reload.
  }
}

root.dataset.ready = 'true';
