'use strict'
// docker-modem loads ssh2 at startup for ssh:// Docker hosts, which weftd
// refuses at flag parsing; this is only reached if that check is bypassed.
class Client {
  constructor() {
    throw new Error('ssh:// Docker hosts are not supported: weftd talks to its own host dockerd (unix:// or tcp://)')
  }
}
module.exports = { Client }
