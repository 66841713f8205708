// A unified diff (as `diff -u` prints it) of two texts, line by line, from a
// longest common subsequence. Manifests are small, so the quadratic table is
// cheap; the common head and tail are trimmed first all the same.

export interface DiffOptions {
  oldLabel: string
  newLabel: string
  /** unchanged lines shown around each change */
  context?: number
}

type Op = { type: ' ' | '-' | '+'; line: string }

/** The diff, or '' when the texts are equal. */
export function unifiedDiff(oldText: string, newText: string, opts: DiffOptions): string {
  const a = splitLines(oldText)
  const b = splitLines(newText)
  const ops = diffLines(a, b)
  if (!ops.some((op) => op.type !== ' ')) return ''
  const out = [`--- ${opts.oldLabel}`, `+++ ${opts.newLabel}`]
  for (const hunk of hunks(ops, opts.context ?? 3)) out.push(...hunk)
  return out.join('\n') + '\n'
}

function splitLines(text: string): string[] {
  if (text === '') return []
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  return lines
}

/** The edit script: unchanged, removed and added lines in order, removals before additions. */
export function diffLines(a: readonly string[], b: readonly string[]): Op[] {
  let head = 0
  while (head < a.length && head < b.length && a[head] === b[head]) head++
  let tail = 0
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++
  const x = a.slice(head, a.length - tail)
  const y = b.slice(head, b.length - tail)

  // lcs[i][j]: length of the longest common subsequence of x[i..] and y[j..]
  const cols = y.length + 1
  const lcs = new Uint32Array((x.length + 1) * cols)
  for (let i = x.length - 1; i >= 0; i--) {
    for (let j = y.length - 1; j >= 0; j--) {
      lcs[i * cols + j] = x[i] === y[j] ? lcs[(i + 1) * cols + j + 1]! + 1 : Math.max(lcs[(i + 1) * cols + j]!, lcs[i * cols + j + 1]!)
    }
  }
  const middle: Op[] = []
  let i = 0
  let j = 0
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      middle.push({ type: ' ', line: x[i++]! })
      j++
    } else if (j >= y.length || (i < x.length && lcs[(i + 1) * cols + j]! >= lcs[i * cols + j + 1]!)) {
      middle.push({ type: '-', line: x[i++]! })
    } else middle.push({ type: '+', line: y[j++]! })
  }
  return [
    ...a.slice(0, head).map((line) => ({ type: ' ' as const, line })),
    ...middle,
    ...a.slice(a.length - tail).map((line) => ({ type: ' ' as const, line })),
  ]
}

/** Groups changes with `context` lines around them; changes closer than 2*context share a hunk. */
function hunks(ops: Op[], context: number): string[][] {
  const changed = ops.flatMap((op, k) => (op.type === ' ' ? [] : [k]))
  const groups: [number, number][] = []
  for (const k of changed) {
    const last = groups[groups.length - 1]
    if (last && k - last[1] <= 2 * context + 1) last[1] = k
    else groups.push([k, k])
  }
  // line numbers (0-based count of lines before) in old and new at each op
  const oldAt: number[] = []
  const newAt: number[] = []
  let o = 0
  let n = 0
  for (const op of ops) {
    oldAt.push(o)
    newAt.push(n)
    if (op.type !== '+') o++
    if (op.type !== '-') n++
  }
  return groups.map(([first, last]) => {
    const start = Math.max(0, first - context)
    const end = Math.min(ops.length - 1, last + context)
    const slice = ops.slice(start, end + 1)
    const oldCount = slice.filter((op) => op.type !== '+').length
    const newCount = slice.filter((op) => op.type !== '-').length
    const header = `@@ -${range(oldAt[start]!, oldCount)} +${range(newAt[start]!, newCount)} @@`
    return [header, ...slice.map((op) => op.type + op.line)]
  })
}

/** GNU diff's range: `start,count`, the count left out when 1, an empty range named by the line before it. */
function range(before: number, count: number): string {
  if (count === 0) return `${before},0`
  return count === 1 ? `${before + 1}` : `${before + 1},${count}`
}
