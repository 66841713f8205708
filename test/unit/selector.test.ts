import t from 'tap'
import { parseSelector, SelectorError } from '../../src/store/selector.js'

t.test('equality, inequality and conjunction', async (t) => {
  const sel = parseSelector('zone=a,tier!=db')
  t.equal(sel({ zone: 'a', tier: 'web' }), true)
  t.equal(sel({ zone: 'a', tier: 'db' }), false)
  t.equal(sel({ zone: 'b' }), false)
  t.equal(sel(undefined), false)
  t.equal(parseSelector('zone==a')({ zone: 'a' }), true)
})

t.test('set-based and existence', async (t) => {
  t.equal(parseSelector('zone in (a, b)')({ zone: 'b' }), true)
  t.equal(parseSelector('zone in (a,b)')({ zone: 'c' }), false)
  t.equal(parseSelector('zone notin (a)')({}), true)
  t.equal(parseSelector('zone notin (a)')({ zone: 'a' }), false)
  t.equal(parseSelector('gpu')({ gpu: '' }), true)
  t.equal(parseSelector('!gpu')({ gpu: '' }), false)
  t.equal(parseSelector('!gpu,zone=a')({ zone: 'a' }), true)
  t.equal(parseSelector('')({ any: 'x' }), true, 'empty selector matches everything')
})

t.test('garbage is a clear error', async (t) => {
  t.throws(() => parseSelector('zone=(a'), SelectorError)
  t.throws(() => parseSelector('a b c'), /unable to parse requirement: "a b c"/)
})
