// Text matchers: exact, prefix, and star-only globs that match in linear time whatever the pattern.
import t from 'tap';
import { compileGlob, compileTextMatch } from '../../src/policy/index.js';

t.test('exact, prefix and plain strings', async (t) => {
  t.equal(compileTextMatch('ops')('ops'), true);
  t.equal(compileTextMatch('ops')('ops2'), false);
  t.equal(compileTextMatch({ exact: 'ops' })('Ops'), false, 'case-sensitive');
  t.equal(compileTextMatch({ prefix: 'urn:device:kiosk-' })('urn:device:kiosk-7'), true);
  t.equal(compileTextMatch({ prefix: 'urn:device:kiosk-' })('urn:device:kiosk'), false);
});

t.test('globs: "*" is the only special character', async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['kiosk-*', 'kiosk-17', true],
    ['kiosk-*', 'kiosk-', true],
    ['kiosk-*', 'xkiosk-1', false],
    ['*.devices.example.org', 'a.devices.example.org', true],
    ['*.devices.example.org', 'a.b.devices.example.org', true],
    ['*.devices.example.org', 'devices.example.org', false],
    ['*.devices.example.org', 'a.devices.example.org.evil', false],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'acb', false],
    ['a*bc*bc', 'abcbc', true],
    ['a*ab', 'ab', false, ],
    ['ab*ba', 'aba', false],
    ['*', 'anything', true],
    ['x**y', 'xy', true],
    // Regex and shell metacharacters are themselves.
    ['a.c', 'abc', false],
    ['a.c', 'a.c', true],
    ['a?c', 'abc', false],
    ['[ab]*', 'a1', false],
    ['[ab]*', '[ab]1', true],
    ['(x+)+y', '(x+)+y', true],
  ];
  for (const [pattern, value, expected] of cases) t.equal(compileGlob(pattern)(value), expected, `${pattern} ~ ${value}`);
});

t.test('a hostile pattern on a long value stays linear', async (t) => {
  const match = compileGlob('*a*a*a*a*a*a*a*a*a*a*b');
  const value = 'a'.repeat(200_000);
  const start = performance.now();
  t.equal(match(value), false);
  t.ok(performance.now() - start < 200, 'no backtracking blow-up');
});
