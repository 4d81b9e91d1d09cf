// 128 concurrent SSE streams through lanes-server's HTTP front (node's own http client, no package):
// every stream's text equals lanes-run's for its prompt (lanes-run --json lines on stdin's file), and a
// client that closes mid-stream has its lane freed within a step or two (stats over the line protocol).
// Usage: node sse_128.mjs PORT PROMPTS_FILE LANES_RUN_JSONL MAX_TOKENS
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';

const [port, promptsPath, refPath, maxTokens] = [Number(process.argv[2]), process.argv[3], process.argv[4],
  Number(process.argv[5])];
const prompts = fs.readFileSync(promptsPath, 'utf8').split('\n').filter((l) => l.length);
const refs = fs.readFileSync(refPath, 'utf8').split('\n').filter((l) => l.length).map((l) => JSON.parse(l));
let failures = 0;
const fail = (m) => { failures++; console.error(`FAIL: ${m}`); };

// POST a streamed completion; resolves with the concatenated text and finish reason. onChunk may abort.
function stream(prompt, onChunk) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, stream: true, ignore_eos: true });
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/completions', method: 'POST', agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`status ${res.statusCode}`)); return; }
      let buf = '', text = '', finish = null, done = false, chunks = 0;
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!ev.startsWith('data: ')) { reject(new Error(`not an SSE data line: ${ev}`)); return; }
          const data = ev.slice(6);
          if (data === '[DONE]') { done = true; continue; }
          const c = JSON.parse(data);
          for (const ch of c.choices) { text += ch.text; if (ch.finish_reason) finish = ch.finish_reason; }
          chunks++;
          if (onChunk && onChunk(chunks, req)) { resolve({ aborted: true }); return; }
        }
      });
      res.on('end', () => (done ? resolve({ text, finish, chunks }) : reject(new Error('stream ended before [DONE]'))));
      res.on('error', reject);
    });
    req.on('error', (e) => (onChunk ? resolve({ aborted: true }) : reject(e)));
    req.end(body);
  });
}

function stats() {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('{"op":"stats"}\n'));
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d) => { buf += d; const nl = buf.indexOf('\n'); if (nl >= 0) { s.end(); resolve(JSON.parse(buf.slice(0, nl))); } });
    s.on('error', reject);
  });
}

const n = 128;
const results = await Promise.all(Array.from({ length: n }, (_, k) => stream(prompts[k % prompts.length])));
results.forEach((r, k) => {
  const ref = refs[k % prompts.length];
  if (r.text !== ref.text) fail(`stream ${k}: ${JSON.stringify(r.text)} != lanes-run ${JSON.stringify(ref.text)}`);
  if (r.finish !== 'length') fail(`stream ${k}: finish_reason ${r.finish}`);
});
if (!failures) console.log(`ok: ${n} concurrent SSE streams equal lanes-run's texts`);

// A client closing mid-stream: its lane is free within a step or two of the close. The stream asks
// for far more tokens than it gets (it would run for seconds), so only the cancel can free the lane.
let steps0 = null;
async function streamLong(prompt) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ prompt, max_tokens: 200, temperature: 0, stream: true, ignore_eos: true });
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/completions', method: 'POST', agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let chunks = 0;
      res.on('data', async (d) => {
        chunks += d.toString().split('data: ').length - 1;
        if (chunks >= 3 && steps0 === null) {
          steps0 = -1;
          res.pause();
          const s = await stats();           // the step count just before the close
          steps0 = s.steps;
          if (s.lanes_active !== 1) fail(`lanes_active ${s.lanes_active} while streaming`);
          req.destroy();
          resolve();
        }
      });
    });
    req.on('error', () => {});
    req.end(body);
  });
}
await streamLong(prompts[0]);
let freed = null;
for (let i = 0; i < 200 && freed === null; i++) {
  const s = await stats();
  if (s.lanes_active === 0) freed = s;
  else await new Promise((r) => setTimeout(r, 5));
}
if (freed === null) fail('the closed stream still holds its lane after 1 s');
else {
  console.log(`ok: lane freed after the client closed (steps ${steps0} -> ${freed.steps})`);
  if (freed.steps - steps0 > 3) fail(`lane freed ${freed.steps - steps0} steps after the close`);
  if (freed.tokens_generated - 128 * maxTokens >= 200) fail('the closed stream ran to its end');
}
process.exit(failures ? 1 : 0);
