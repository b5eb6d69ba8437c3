// openai_client.mjs - the official `openai` npm client against `parley serve`
// (run by test_serve_cli with: node openai_client.mjs PORT MODEL_ID API_KEY).
// Checks a models list, a whole chat completion and a streamed one; the
// streamed text must equal the whole one (greedy, same prompt).
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const [port, modelId, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey, maxRetries: 0, timeout: 60000 });

const models = await client.models.list();
assert.equal(models.data.length, 1);
assert.equal(models.data[0].id, modelId);
assert.equal(models.data[0].object, 'model');

const req = { model: modelId, messages: [{ role: 'user', content: 'hello' }], max_tokens: 8, temperature: 0 };
const whole = await client.chat.completions.create(req);
assert.equal(whole.object, 'chat.completion');
assert.ok(whole.id.startsWith('chatcmpl-'));
assert.equal(whole.choices.length, 1);
assert.equal(whole.choices[0].message.role, 'assistant');
assert.equal(typeof whole.choices[0].message.content, 'string');
assert.ok(['stop', 'length'].includes(whole.choices[0].finish_reason));
// ChatML on the byte-level fixture vocabulary: len("user") + len("hello") + 4, plus the generation prompt's 11
assert.equal(whole.usage.prompt_tokens, 4 + 5 + 4 + 11);
assert.equal(whole.usage.total_tokens, whole.usage.prompt_tokens + whole.usage.completion_tokens);

const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
let text = '', role = null, finish = null, usage = null, chunks = 0;
for await (const chunk of stream) {
  chunks++;
  assert.equal(chunk.object, 'chat.completion.chunk');
  if (chunk.usage) usage = chunk.usage;
  const c = chunk.choices[0];
  if (!c) continue;
  if (c.delta.role) role = c.delta.role;
  if (c.delta.content) text += c.delta.content;
  if (c.finish_reason) finish = c.finish_reason;
}
assert.equal(role, 'assistant');
assert.equal(finish, whole.choices[0].finish_reason);
assert.equal(text, whole.choices[0].message.content);
assert.ok(usage, 'a usage chunk');
assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
assert.ok(usage.prompt_tokens_details.cached_tokens > 0, 'the same prompt again reuses the cache');
console.log(`openai client ok: ${chunks} chunks, ${usage.completion_tokens} tokens`);
