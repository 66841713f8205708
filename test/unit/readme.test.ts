// The README opens with the two fresh-machine commands, pasted as root: these
// machines have no sudo, so a command that starts with it fails as pasted.
import { readFileSync } from 'node:fs'
import t from 'tap'

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? ''
const commands = firstBlock.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean)

t.test('the README opens with exactly the demo and the test command', async (t) => {
  t.same(commands, ['bash scripts/demo.sh', 'bash scripts/test.sh'])
  t.ok(readme.indexOf('```sh') < readme.indexOf('\n## '), 'the commands come before any section')
})

t.test('no command in the README needs sudo', async (t) => {
  const lines = readme.split('\n').filter((l) => /(^|[\s`$(])sudo\s/.test(l))
  t.same(lines, [], 'lines that call sudo')
})
