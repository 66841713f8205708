import t from 'tap'
import { formatDuration, parseDuration, tryParseDuration } from '../../src/crds/index.js'

t.test('Go-style durations in milliseconds', async (t) => {
  const cases: Array<[string, number]> = [
    ['24h', 86_400_000],
    ['90m', 5_400_000],
    ['1h30m', 5_400_000],
    ['30s', 30_000],
    ['1.5h', 5_400_000],
    ['1.1s', 1100],
    ['500ms', 500],
    ['1500us', 1.5],
    ['1m30.5s', 90_500],
    ['0', 0],
    ['-1h', -3_600_000],
    ['+5m', 300_000],
  ]
  for (const [s, ms] of cases) t.equal(parseDuration(s), ms, s)
})

t.test('refuses what Go refuses', async (t) => {
  for (const bad of ['', '1d', '1', 'h', '1h 30m', ' 1h', '1H', '1h30', '.h', '1w', '10 s', '-']) {
    t.equal(tryParseDuration(bad), undefined, JSON.stringify(bad))
  }
  t.throws(() => parseDuration('1d'), { name: 'RangeError', message: /"1d"/ })
})

t.test('formats the shortest spelling', async (t) => {
  t.equal(formatDuration(86_400_000), '24h')
  t.equal(formatDuration(5_400_000), '1h30m')
  t.equal(formatDuration(90_500), '1m30s500ms')
  t.equal(formatDuration(0), '0s')
  t.equal(formatDuration(-30_000), '-30s')
  for (const s of ['24h', '1h30m', '10s', '2h0m5s']) t.equal(parseDuration(formatDuration(parseDuration(s))), parseDuration(s), s)
})
