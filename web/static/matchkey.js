/**
 * web/static/matchkey.js owns the browser's copy of the directory's one matching rule,
 * `directory::model::match_key` (src/directory/model.rs): names are matched and sorted
 * with case and accents folded (`Björn`, `bjorn` and `BJÖRN` are one key). The page
 * uses it to put a user that arrives live where the server's order would, and to tell
 * whether it matches the search shown. The server stays the judge: a reload shows its
 * order.
 */

/** Letters that carry their stroke in the letter itself, folded by hand as in Rust. */
const BY_HAND = { ø: 'o', ł: 'l', đ: 'd', ħ: 'h', ı: 'i', ŧ: 't', ß: 'ss', æ: 'ae', œ: 'oe', þ: 'th' };

/** The key a name (or a search needle) is matched and sorted by. */
export function matchKey(text) {
  return String(text ?? '')
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[øłđħıŧßæœþ]/g, (c) => BY_HAND[c])
    .replace(/\s/g, ' ')
    .normalize('NFC');
}

/** The key an email is unique, matched and sorted by: case folded, nothing else. */
export function emailKey(email) {
  return String(email ?? '').toLowerCase();
}
