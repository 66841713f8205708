// Kubernetes label selectors (`-l`): equality (`a=b`, `a==b`, `a!=b`),
// sets (`a in (x,y)`, `a notin (x)`), existence (`a`, `!a`), comma = AND.
export type LabelSelector = (labels: Record<string, string> | undefined) => boolean

type Requirement = (labels: Record<string, string>) => boolean

export class SelectorError extends Error {
  override name = 'SelectorError'
}

export function parseSelector(text: string): LabelSelector {
  const requirements = splitTopLevel(text.trim()).filter((s) => s.length > 0).map(parseRequirement)
  return (labels) => requirements.every((req) => req(labels ?? {}))
}

function splitTopLevel(text: string): string[] {
  const parts: string[] = []
  let depth = 0
  let current = ''
  for (const ch of text) {
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (ch === ',' && depth === 0) {
      parts.push(current.trim())
      current = ''
    } else current += ch
  }
  parts.push(current.trim())
  return parts
}

const KEY = String.raw`[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?`
const VALUE = String.raw`([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?`

function parseRequirement(req: string): Requirement {
  let m = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VALUE})$`).exec(req)
  if (m) {
    const [key, op, value] = [m[1]!, m[3]!, m[4]!]
    return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value
  }
  m = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`).exec(req)
  if (m) {
    const [key, op] = [m[1]!, m[3]!]
    const values = new Set(m[4]!.split(',').map((v) => v.trim()))
    return op === 'in' ? (l) => key in l && values.has(l[key]!) : (l) => !(key in l) || !values.has(l[key]!)
  }
  m = new RegExp(`^(!?)\\s*(${KEY})$`).exec(req)
  if (m) {
    const [negate, key] = [m[1] === '!', m[2]!]
    return negate ? (l) => !(key in l) : (l) => key in l
  }
  throw new SelectorError(`unable to parse requirement: "${req}"`)
}
