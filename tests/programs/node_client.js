// node_client: Node.js probes for the e2e tests.
//   node node_client.js get URL         http.get (dns.lookup -> getaddrinfo on
//                                       libuv's thread pool); prints the body
//   node node_client.js resolve4 NAME   dns.resolve4 (c-ares, its own UDP queries)
//   node node_client.js parallel URL N  N concurrent GETs; "ok N" when all
//                                       bodies are equal, the bodies otherwise
//   node node_client.js cat PATH        PATH's content (fs.readFileSync)
//   node node_client.js ls DIR          DIR's entries, sorted, one a line; "/"
//                                       after a directory, "@" after a symlink
//   node node_client.js stat PATH       "SIZE MTIME" (fs.statSync)
'use strict';
const http = require('http');
const dns = require('dns');
const fs = require('fs');

function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 20000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function main(argv) {
  const [mode, arg, n] = argv;
  if (mode === 'get') {
    process.stdout.write(await get(arg));
  } else if (mode === 'resolve4') {
    const addrs = await dns.promises.resolve4(arg);
    console.log(addrs.sort().join('\n'));
  } else if (mode === 'parallel') {
    const count = Number(n);
    const bodies = await Promise.all(Array.from({ length: count }, () => get(arg)));
    if (bodies.every((b) => b === bodies[0])) {
      process.stdout.write(bodies[0]);
      console.log('ok ' + count);
    } else {
      console.log(bodies.join('---\n'));
      process.exitCode = 1;
    }
  } else if (mode === 'cat') {
    process.stdout.write(fs.readFileSync(arg));
  } else if (mode === 'ls') {
    const ents = fs.readdirSync(arg, { withFileTypes: true });
    ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of ents) {
      console.log(e.name + (e.isDirectory() ? '/' : e.isSymbolicLink() ? '@' : ''));
    }
  } else if (mode === 'stat') {
    const st = fs.statSync(arg);
    console.log(st.size + ' ' + Math.floor(st.mtimeMs / 1000));
  } else {
    console.error('usage: node_client.js get URL | resolve4 NAME | parallel URL N | cat PATH | ls DIR | stat PATH');
    process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((e) => {
  console.error('error: ' + (e.code || e.message));
  process.exitCode = 1;
});
