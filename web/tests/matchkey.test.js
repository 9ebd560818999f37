// The browser's copy of directory::model::match_key gives the Rust function's answers
// (the cases of its unit test in src/directory/model.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { emailKey, matchKey } from '../static/matchkey.js';

test('names fold case and accents as the server folds them', () => {
  assert.equal(matchKey('ÄÖÜ Zoë'), 'aou zoe');
  assert.equal(matchKey('Björn'), matchKey('bjorn'));
  assert.equal(matchKey('ÅSA'), matchKey('åsa'));
  assert.equal(matchKey('Bjørn Łukasz Straße'), 'bjorn lukasz strasse');
  assert.equal(matchKey('Jose\u0301'), 'jose');
  assert.equal(matchKey('Ｂｊöｒｎ\u00a0ﬁn'), 'bjorn fin');
  assert.equal(matchKey('한국'), '한국');
  assert.equal(matchKey('Ёлка'), 'елка');
  assert.equal(matchKey('नमस्ते'), 'नमस्ते');
});

test('emails fold case only', () => {
  assert.equal(emailKey('José@Bücher.DE'), 'josé@bücher.de');
});
