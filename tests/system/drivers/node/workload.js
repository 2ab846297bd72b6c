// node-postgres with named queries: every query object with a `name` is prepared once per
// connection (Parse with that name) and then only bound and executed. Several clients run
// concurrently through a proxy with fewer server connections than clients.
// Usage: node workload.js HOST PORT USER PASSWORD CLIENTS ROUNDS   (prints "ok" at the end)
'use strict';
const { Client } = require('pg');

const [host, port, user, password, clients, rounds] = process.argv.slice(2);

async function runClient(n) {
  const client = new Client({
    host, port: Number(port), user, password, database: 'appdb',
    ssl: { rejectUnauthorized: false },
  });
  await client.connect();
  try {
    for (let i = 0; i < Number(rounds); i++) {
      const sum = await client.query({ name: 'sum', text: 'select $1::int + $2::int as s', values: [n, i] });
      if (sum.rows[0].s !== n + i) throw new Error(`client ${n}: sum ${sum.rows[0].s} != ${n + i}`);
      const who = await client.query({ name: 'who', text: 'select $1::text as who', values: [`c${n}`] });
      if (who.rows[0].who !== `c${n}`) throw new Error(`client ${n}: got ${who.rows[0].who}`);
      await client.query('BEGIN');
      await client.query({
        name: 'upsert',
        text: 'insert into kv values ($1, $2) on conflict (k) do update set v = excluded.v',
        values: [`node${n}`, String(i)],
      });
      await client.query('COMMIT');
      const back = await client.query({ name: 'read', text: 'select v from kv where k = $1', values: [`node${n}`] });
      if (back.rows[0].v !== String(i)) throw new Error(`client ${n}: read ${back.rows[0].v} != ${i}`);
    }
  } finally {
    await client.end();
  }
}

const all = [];
for (let n = 0; n < Number(clients); n++) all.push(runClient(n));
Promise.all(all).then(
  () => console.log('ok'),
  (err) => {
    console.error(err.stack || String(err));
    process.exit(1);
  },
);
