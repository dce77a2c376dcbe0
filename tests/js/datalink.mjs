// seisplotjs's DataLinkConnection against an orb's /datalink WebSocket, for
// tests/tests/websocket.rs: connects (subprotocol DataLink1.0), sends MATCH, positions
// at the oldest packet, streams, and decodes each packet's miniSEED with seisplotjs's
// own parser. Prints one JSON line per record, then `{"done": N}` after N packets.
//
// usage: node datalink.mjs ws://HOST:PORT/datalink MATCH PACKETS
import { WebSocket } from "ws";

// seisplotjs uses the browser's global WebSocket; in Node the `ws` package is it.
globalThis.WebSocket = WebSocket;
// Its Node entry still defines a debugging element class at load; an empty base
// class lets it load (nothing here draws).
globalThis.HTMLDivElement ??= class {};
globalThis.customElements ??= { define() {}, get() {} };
const sp = await import("seisplotjs");

const [url, match, count] = process.argv.slice(2);
const want = Number(count);
if (!url || !match || !(want > 0)) {
  console.error("usage: node datalink.mjs URL MATCH PACKETS");
  process.exit(64);
}

const guard = setTimeout(() => {
  console.error(`timed out after ${got} of ${want} packets`);
  process.exit(2);
}, 60_000);

let got = 0;
const dl = new sp.datalink.DataLinkConnection(
  url,
  (packet) => {
    const d = packet.data;
    const bytes = d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength);
    for (const r of sp.miniseed.parseDataRecords(bytes)) {
      const h = r.header;
      console.log(
        JSON.stringify({
          streamId: packet.streamId,
          pktid: Number(packet.pktid),
          net: h.netCode,
          sta: h.staCode,
          loc: h.locCode,
          chan: h.chanCode,
          startMillis: h.startTime.toMillis(),
          rate: h.sampleRate,
          samples: Array.from(r.decompress()),
        }),
      );
    }
    got += 1;
    if (got === want) {
      clearTimeout(guard);
      console.log(JSON.stringify({ done: got }));
      dl.close();
      process.exit(0);
    }
  },
  (error) => {
    console.error(`DataLink error: ${error.message ?? error}`);
    process.exit(1);
  },
);

const id = await dl.connect();
console.error(`server: ${id}`);
const matched = await dl.match(match);
console.error(`match: ${matched.message}`);
// POSITION AFTER 0: the oldest packet in the ring.
await dl.positionAfterHPTime(0);
// STREAM has no reply: packets come to the handler above.
dl.stream().catch((e) => {
  console.error(`stream: ${e.message ?? e}`);
  process.exit(1);
});
