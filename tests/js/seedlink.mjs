// seisplotjs's SeedLink connections against an orb's /seedlink WebSocket, for
// tests/tests/websocket.rs: SeedLink 3.1 (`SeedlinkConnection`, subprotocol
// SeedLink3.1) or 4.0 (`seedlink4.SeedlinkConnection`, subprotocol SeedLink4.0)
// negotiates the given commands, streams, and decodes each record with seisplotjs's
// miniSEED parser. Prints one JSON line per record, then `{"done": N}` after N records.
//
// usage: node seedlink.mjs 3|4 ws://HOST:PORT/seedlink RECORDS COMMAND...
//   version 3: the last COMMAND is the one that starts the transfer (DATA, TIME ...)
import { WebSocket } from "ws";

// seisplotjs uses the browser's global WebSocket; in Node the `ws` package is it.
globalThis.WebSocket = WebSocket;
// Its Node entry still defines a debugging element class at load; an empty base
// class and registry let it load (nothing here draws).
globalThis.HTMLDivElement ??= class {};
globalThis.customElements ??= { define() {}, get() {} };
const sp = await import("seisplotjs");

const [version, url, count, ...commands] = process.argv.slice(2);
const want = Number(count);
if (!["3", "4"].includes(version) || !url || !(want > 0) || commands.length === 0) {
  console.error("usage: node seedlink.mjs 3|4 URL RECORDS COMMAND...");
  process.exit(64);
}

let got = 0;
const guard = setTimeout(() => {
  console.error(`timed out after ${got} of ${want} records`);
  process.exit(2);
}, 60_000);

function record(sequence, r) {
  const h = r.header;
  console.log(
    JSON.stringify({
      sequence: Number(sequence),
      net: h.netCode,
      sta: h.staCode,
      loc: h.locCode,
      chan: h.chanCode,
      startMillis: h.startTime.toMillis(),
      rate: h.sampleRate,
      samples: Array.from(r.decompress()),
    }),
  );
  got += 1;
  if (got === want) {
    clearTimeout(guard);
    console.log(JSON.stringify({ done: got }));
    conn.close();
    process.exit(0);
  }
}

function fail(error) {
  console.error(`SeedLink error: ${error.message ?? error}`);
  process.exit(1);
}

let conn;
if (version === "3") {
  const start = commands.pop();
  conn = new sp.seedlink.SeedlinkConnection(
    url,
    commands,
    (packet) => record(packet.sequence, packet.miniseed),
    fail,
  );
  conn.command = start;
} else {
  conn = new sp.seedlink4.SeedlinkConnection(
    url,
    commands,
    (packet) => {
      const r = packet.asMiniseed();
      if (r === null) {
        fail(new Error(`not miniSEED 2: format ${packet.dataFormat}`));
      }
      record(packet.sequence, r);
    },
    fail,
  );
}
await conn.connect();
