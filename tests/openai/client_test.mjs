// lanes-server's HTTP front driven by the official `openai` npm client: completions and chat, streamed
// and not, n=2 and logprobs; every greedy result must equal the line protocol's for the same request.
// Usage: node client_test.mjs PORT  (the server runs --chat-template chatml)
import OpenAI from 'openai';
import net from 'node:net';

const port = Number(process.argv[2]);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'none', maxRetries: 0 });
let failures = 0;
function check(ok, what) {
  if (!ok) { failures++; console.error(`FAIL: ${what}`); } else console.log(`ok: ${what}`);
}

// One request on the line protocol: the concatenated text, the token ids, logprobs, the done event.
function line(req) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '', text = '', tokens = [], logprobs = [];
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify({ id: 1, ...req }) + '\n'));
    sock.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const ev = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (ev.event === 'token') {
          text += ev.text;
          tokens.push(...ev.tokens);
          if (ev.logprobs) logprobs.push(...ev.logprobs);
        } else {
          sock.end();
          if (ev.event === 'done') resolve({ text, tokens, logprobs, done: ev });
          else reject(new Error(`line protocol error: ${JSON.stringify(ev)}`));
        }
      }
    });
    sock.on('error', reject);
  });
}

const prompt = 'Once upon a time';
const ref = await line({ prompt, max_tokens: 24, temperature: 0, logprobs: 3 });
check(ref.tokens.length > 0, `line protocol reference: ${ref.tokens.length} tokens, ${ref.done.reason}`);

// /v1/models names the model the server serves.
const models = await client.models.list();
check(models.data.length === 1 && typeof models.data[0].id === 'string', `models: ${models.data.map((m) => m.id)}`);
const model = models.data[0].id;

// Completions, not streamed, greedy.
const c = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0 });
check(c.choices.length === 1 && c.choices[0].text === ref.text, 'completion text equals the line protocol\'s');
check(c.usage.completion_tokens === ref.tokens.length && c.usage.prompt_tokens === ref.done.usage.prompt_tokens,
  `completion usage ${JSON.stringify(c.usage)}`);
check(c.choices[0].finish_reason === (ref.done.reason === 'stop' ? 'stop' : 'length'), `finish_reason ${c.choices[0].finish_reason}`);

// Completions, streamed: the deltas concatenate to the same text, one finish_reason at the end, usage last.
let streamed = '', finish = null, usage = null;
const cs = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0, stream: true,
  stream_options: { include_usage: true } });
for await (const chunk of cs) {
  if (chunk.usage) usage = chunk.usage;
  for (const ch of chunk.choices) { streamed += ch.text; if (ch.finish_reason) finish = ch.finish_reason; }
}
check(streamed === ref.text, 'streamed completion text equals the line protocol\'s');
check(finish === c.choices[0].finish_reason && usage && usage.completion_tokens === ref.tokens.length,
  `streamed finish ${finish}, usage ${JSON.stringify(usage)}`);

// n = 2 with logprobs: both greedy choices equal the reference, logprobs equal the line protocol's.
const n2 = await client.completions.create({ model, prompt, max_tokens: 24, temperature: 0, n: 2, logprobs: 3 });
check(n2.choices.length === 2 && n2.choices.every((ch) => ch.text === ref.text), 'n=2: both choices equal the reference');
for (const ch of n2.choices) {
  const lp = ch.logprobs;
  check(lp && lp.token_logprobs.length === ref.tokens.length && lp.top_logprobs.every((t) => Object.keys(t).length <= 3),
    `choice ${ch.index}: one logprob per token, at most 3 alternatives`);
  check(lp.token_logprobs.every((v, i) => Math.abs(v - ref.logprobs[i].logprob) < 1e-6),
    `choice ${ch.index}: token logprobs equal the line protocol's`);
  check(lp.tokens.join('') === ch.text, `choice ${ch.index}: the logprobs' tokens spell the text`);
}

// Chat, not streamed and streamed: the rendered ChatML prompt on the line protocol gives the same reply.
const messages = [{ role: 'system', content: 'You tell stories.' }, { role: 'user', content: 'A story about a cat' }];
const rendered = '<|im_start|>system\nYou tell stories.<|im_end|>\n<|im_start|>user\nA story about a cat<|im_end|>\n' +
  '<|im_start|>assistant\n';
const cref = await line({ prompt: rendered, max_tokens: 20, temperature: 0 });
const chat = await client.chat.completions.create({ model, messages, max_tokens: 20, temperature: 0 });
check(chat.choices[0].message.role === 'assistant' && chat.choices[0].message.content === cref.text,
  'chat content equals the line protocol\'s for the rendered prompt');
let role = null, content = '', cfinish = null;
const chs = await client.chat.completions.create({ model, messages, max_tokens: 20, temperature: 0, stream: true });
for await (const chunk of chs) {
  for (const ch of chunk.choices) {
    if (ch.delta.role) role = ch.delta.role;
    if (ch.delta.content) content += ch.delta.content;
    if (ch.finish_reason) cfinish = ch.finish_reason;
  }
}
check(role === 'assistant' && content === cref.text && cfinish === chat.choices[0].finish_reason, 'streamed chat equals');

// Chat with n = 2 and logprobs (top_logprobs 2).
const chn = await client.chat.completions.create({ model, messages, max_tokens: 20, temperature: 0, n: 2, logprobs: true,
  top_logprobs: 2 });
check(chn.choices.length === 2 && chn.choices.every((ch) => ch.message.content === cref.text), 'chat n=2 both equal');
check(chn.choices.every((ch) => ch.logprobs.content.length === cref.tokens.length &&
  ch.logprobs.content.every((t) => t.top_logprobs.length === 2)), 'chat logprobs: one entry per token, 2 alternatives');

// A bad request surfaces as the client's typed error with the status and the field.
try {
  await client.completions.create({ model, prompt, max_tokens: 0 });
  check(false, 'max_tokens 0 accepted');
} catch (e) {
  check(e.status === 400 && /max_tokens/.test(e.message), `max_tokens 0: ${e.status} ${e.message}`);
}

if (failures) { console.error(`${failures} check(s) failed`); process.exit(1); }
console.log('all openai client checks passed');
