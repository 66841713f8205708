import fc from 'fast-check'
import t from 'tap'
import { unifiedDiff } from '../../src/cli/unidiff.js'

const opts = { oldLabel: 'live/x', newLabel: 'merged/x' }
const text = (...lines: string[]) => lines.map((l) => l + '\n').join('')

/** Applies a unified diff to `old`: the property every diff must satisfy. */
function patch(old: string, diff: string): string {
  const a = old === '' ? [] : old.replace(/\n$/, '').split('\n')
  const out: string[] = []
  let i = 0
  const lines = diff.replace(/\n$/, '').split('\n').slice(2)
  for (const line of lines) {
    const m = /^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@$/.exec(line)
    if (m) {
      const count = m[2] === undefined ? 1 : Number(m[2])
      const start = count === 0 ? Number(m[1]) : Number(m[1]) - 1
      while (i < start) out.push(a[i++]!)
      continue
    }
    const [op, rest] = [line[0], line.slice(1)]
    if (op === ' ' || op === '-') {
      if (a[i] !== rest) throw new Error(`context mismatch at old line ${i + 1}: ${JSON.stringify(a[i])} vs ${JSON.stringify(rest)}`)
      i++
    }
    if (op === ' ' || op === '+') out.push(rest)
  }
  while (i < a.length) out.push(a[i++]!)
  return out.map((l) => l + '\n').join('')
}

t.test('equal texts: no diff at all', async (t) => {
  t.equal(unifiedDiff(text('a', 'b'), text('a', 'b'), opts), '')
  t.equal(unifiedDiff('', '', opts), '')
})

t.test('one changed line with three lines of context, as diff -u prints it', async (t) => {
  const old = text('1', '2', '3', '4', '5', '6', '7', '8', '9')
  const now = text('1', '2', '3', '4', 'five', '6', '7', '8', '9')
  t.equal(unifiedDiff(old, now, opts), '--- live/x\n+++ merged/x\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n')
})

t.test('a new file diffs from nothing; a removed one to nothing', async (t) => {
  t.equal(unifiedDiff('', text('a', 'b'), opts), '--- live/x\n+++ merged/x\n@@ -0,0 +1,2 @@\n+a\n+b\n')
  t.equal(unifiedDiff(text('a'), '', opts), '--- live/x\n+++ merged/x\n@@ -1 +0,0 @@\n-a\n')
})

t.test('changes far apart get hunks of their own; close ones share one', async (t) => {
  const lines = Array.from({ length: 20 }, (_, i) => `l${i + 1}`)
  const far = [...lines]
  far[1] = 'X'
  far[17] = 'Y'
  const d = unifiedDiff(text(...lines), text(...far), opts)
  t.same(d.match(/^@@.*@@$/gm), ['@@ -1,5 +1,5 @@', '@@ -15,6 +15,6 @@'])
  const near = [...lines]
  near[4] = 'X'
  near[10] = 'Y' // six unchanged lines between: still one hunk
  t.same(unifiedDiff(text(...lines), text(...near), opts).match(/^@@.*@@$/gm), ['@@ -2,13 +2,13 @@'])
})

t.test('removals come before additions; insertion at the start and end', async (t) => {
  t.equal(unifiedDiff(text('a', 'b'), text('c', 'd'), opts), '--- live/x\n+++ merged/x\n@@ -1,2 +1,2 @@\n-a\n-b\n+c\n+d\n')
  t.equal(unifiedDiff(text('b'), text('a', 'b', 'c'), opts), '--- live/x\n+++ merged/x\n@@ -1 +1,3 @@\n+a\n b\n+c\n')
})

t.test('property: applying the diff to the old text gives the new one', async () => {
  const doc = fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'spec:', '  x: 1'), { maxLength: 30 }).map((ls) => text(...ls))
  fc.assert(
    fc.property(doc, doc, (a, b) => {
      const d = unifiedDiff(a, b, opts)
      return d === '' ? a === b : patch(a, d) === b
    }),
    { numRuns: 500 },
  )
})
