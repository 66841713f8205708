// ChangeJournal: what changed since a cursor, and undefined (never a short
// answer) once it cannot tell: trimmed past the cursor, or a list between.
import t from 'tap'
import { ChangeJournal } from '../../src/runtime/journal.js'

t.test('the names since a cursor, in order, repeats kept', async (t) => {
  const j = new ChangeJournal()
  const start = j.cursor
  j.note('a', 1)
  j.note('b', 2)
  const mid = j.cursor
  j.note('a', 2)
  t.same(j.since(start), ['a', 'b', 'a'])
  t.same(j.since(mid), ['a'])
  t.same(j.since(j.cursor), [], 'nothing since now')
  t.equal(j.since(j.cursor + 1), undefined, 'a cursor from the future is not known')
})

t.test('trimmed: an old cursor answers undefined, a recent one still its names', async (t) => {
  const j = new ChangeJournal()
  const start = j.cursor
  for (let i = 0; i < 1024; i++) j.note(`n${i}`, 1)
  t.equal(j.since(start)?.length, 1024, 'kept while at most 1024 (or four times the size)')
  const recent = j.cursor
  j.note('last', 1)
  t.equal(j.since(start), undefined, 'trimmed past the first cursor')
  t.same(j.since(recent), ['last'])
  const big = new ChangeJournal()
  const c = big.cursor
  for (let i = 0; i < 3000; i++) big.note(`n${i}`, 1000)
  t.equal(big.since(c)?.length, 3000, 'a cache of 1000 keeps 4000 changes')
})

t.test('a reset (a list): every earlier cursor answers undefined, later ones their names', async (t) => {
  const j = new ChangeJournal()
  const before = j.cursor
  j.note('a', 1)
  j.reset()
  t.equal(j.since(before), undefined)
  const after = j.cursor
  j.note('b', 1)
  t.same(j.since(after), ['b'])
})
