// test_voice.mjs - voice mode end to end: Chromium's fake microphone plays
// ../shared/audio/jfk.wav into the page, which streams 16 kHz PCM16 over
// /v1/realtime; parley transcribes it, answers (random-weight fixture, so the
// words are nonsense) and speaks; the page shows the transcript, plays the
// audio and shows the per-stage latency bar.
// Skips while `parley serve` has no /v1/realtime (the voice pipeline issue).
import fs from 'node:fs';
import path from 'node:path';
import { run, step, check, launchBrowser, newPage, checkNoErrors, screenshot, startServer, fixture, skip, wsStatus } from './harness.mjs';

const SHARED = process.env.PL_SHARED_DIR || '';
const WAV = path.join(SHARED, 'audio/jfk.wav');

// Counts the realtime events the page receives, by type.
function countEvents() {
  window.events = {};
  const Real = window.WebSocket;
  window.WebSocket = class extends Real {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', (e) => {
        try {
          const t = JSON.parse(e.data).type;
          window.events[t] = (window.events[t] || 0) + 1;
        } catch { /* not JSON */ }
      });
    }
  };
}

run('voice against parley serve', async (t) => {
  if (!fs.existsSync(WAV)) skip(`${WAV} not found (../shared is absent)`);
  const server = await startServer(fixture('tiny-qwen3-f32.gguf'), ['-np', '1', '-t', '1']);
  t.defer(async (code) => { await server.stop(); return code ? `server log:\n${server.log.slice(-3000)}` : ''; });

  // does this server speak /v1/realtime?
  const probe = await wsStatus(`${server.url}/v1/realtime`);
  if (probe !== 101) skip(`parley serve has no /v1/realtime WebSocket yet (GET /v1/realtime: ${probe})`);

  const browser = await launchBrowser(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    `--use-file-for-fake-audio-capture=${WAV}%noloop`, '--autoplay-policy=no-user-gesture-required']);
  t.defer(() => browser.close());
  const page = await newPage(browser, { permissions: ['microphone'] });
  await page.addInitScript(countEvents);
  await page.goto(`${server.url}/`);

  await step('jfk.wav in: transcript, answer audio, latency bar', async () => {
    await page.click('#mic');
    const user = page.locator('.msg.user').first();
    await user.waitFor({ timeout: 60000 });
    const transcript = (await user.locator('.bubble').textContent()).toLowerCase();
    console.log(`      transcript: ${transcript}`);
    // the first user message is the first utterance (jfk.wav pauses after "And so,
    // my fellow Americans"), so its words count as well as the rest of the text
    const words = ['and', 'so', 'my', 'fellow', 'american', 'americans', 'ask', 'not', 'what', 'your', 'country',
                   'can', 'do', 'for', 'you'];
    const hits = words.filter((w) => new RegExp(`\\b${w}\\b`).test(transcript));
    check(hits.length >= 3, `transcript shares ${hits.length} words with jfk.txt`);
    // the first answer that spoke and got its latency bar: on a loaded machine
    // recognition slows down and the next utterance barges in on the first answers
    // before they speak (their bubbles say "generated 0", or they have text and no
    // audio yet); a later utterance's answer completes. So: wait for audio deltas,
    // then for an answer whose bar has the voice-to-voice figure.
    await page.waitForFunction(() => (window.events['response.audio.delta'] || 0) +
                                     (window.events['response.output_audio.delta'] || 0) > 0, null, { timeout: 120000 });
    const a = page.locator('.msg.assistant:has(.stagebar .bar)').filter({ hasText: /voice-to-voice \d/ }).first();
    await a.locator('.stagebar .bar').waitFor({ timeout: 90000 });
    const ev = await page.evaluate(() => window.events);
    console.log(`      events: ${JSON.stringify(ev)}`);
    check((ev['response.audio.delta'] || 0) + (ev['response.output_audio.delta'] || 0) > 0, 'audio deltas received');
    check(ev['input_audio_buffer.speech_started'] >= 1, 'speech_started');
    const legend = await a.locator('.stagebar .legend').textContent();
    check(/voice-to-voice \d/.test(legend) && /speech-to-text/.test(legend), `latency legend: ${legend}`);
    await screenshot(page, 'voice');
    await page.click('#mic');
  });
  checkNoErrors(page);
});
