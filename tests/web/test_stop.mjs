// test_stop.mjs - Stop cancels the request: the page stops showing tokens and
// keeps what arrived, and the server (one slot, so a stuck slot would block
// everything) frees the slot at once, long before the answer's 1000 tokens
// (tens of tok/s on the SmolLM2-135M-shape fixture: > 10 s) would be done.
import { run, step, check, checkEq, launchBrowser, newPage, checkNoErrors, screenshot, startServer, fixture, api, sleep, visiblePrompt } from './harness.mjs';

run('stop against parley serve', async (t) => {
  const server = await startServer(fixture('smollm2-135m-spm-q8_0.gguf'), ['-np', '1', '-c', '2048', '-t', '1']);
  t.defer(async (code) => { await server.stop(); return code ? `server log:\n${server.log.slice(-3000)}` : ''; });
  const browser = await launchBrowser();
  t.defer(() => browser.close());
  const page = await newPage(browser);
  await page.goto(`${server.url}/`);
  await page.locator('#model-name').filter({ hasText: /\S/ }).waitFor();

  await page.click('#open-settings');
  await page.fill('#s-max', '1000');
  await page.locator('#s-temp').fill('0');
  await page.click('#settings button[value=close]');

  const a = page.locator('.msg.assistant').last();
  let atStop;
  await step('stop mid-answer', async () => {
    await page.fill('#input', await visiblePrompt(server, 'content'));
    await page.press('#input', 'Enter');
    await page.locator('#stop').waitFor();
    // a few tokens in: the answer (or thoughts) has grown past 10 characters
    await page.waitForFunction(() => {
      const m = [...document.querySelectorAll('.msg.assistant')].pop();
      return m && m.querySelector('.content').textContent.length + m.querySelector('.thought-body').textContent.length > 10;
    }, null, { timeout: 30000 });
    await page.click('#stop');
    await page.locator('#send').waitFor();
    check(await page.locator('#stop').isHidden(), 'stop button hidden after stop');
    checkEq(await a.locator('.note').textContent(), 'Stopped.', 'stopped note');
    atStop = await a.locator('.content').textContent();
    check(atStop.length > 0, 'partial answer kept');
  });

  await step('the server frees the slot at once', async () => {
    const t0 = Date.now();
    let props;
    for (;;) {
      props = await api(server, '/props');
      if (!props.slots[0].busy) break;
      check(Date.now() - t0 < 2000, `slot still busy ${Date.now() - t0} ms after stop`);
      await sleep(50);
    }
    console.log(`      slot free ${Date.now() - t0} ms after stop; n_cache ${props.slots[0].n_cache}`);
    check(props.slots[0].n_cache < 600, `slot holds ${props.slots[0].n_cache} tokens: generation ran on`);
    // one slot: a request is served promptly only if the slot was freed
    const t1 = Date.now();
    const r = await api(server, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
    check(r.choices.length === 1 && Date.now() - t1 < 8000, `follow-up request took ${Date.now() - t1} ms`);
  });

  await step('nothing arrives after stop; the partial answer is stored', async () => {
    await sleep(1000);
    checkEq(await a.locator('.content').textContent(), atStop, 'answer after stop');
    const conv = await page.evaluate(() => JSON.parse(localStorage.getItem('parley.conversations.v1')).conversations[0]);
    checkEq(conv.messages[1].stopped, true, 'stored as stopped');
    check(conv.messages[1].content.length > 0, 'stored partial answer');
    check(await a.locator('.metrics .m-ttft').count() === 1, 'page-measured metrics on a stopped answer');
    await screenshot(page, 'stop');
  });

  await step('reload mid-answer keeps the partial answer and frees the slot', async () => {
    await page.click('#new-chat');
    await page.fill('#input', await visiblePrompt(server, 'content'));
    await page.press('#input', 'Enter');
    await page.waitForFunction(() => {
      const m = [...document.querySelectorAll('.msg.assistant')].pop();
      return m && m.querySelector('.content').textContent.length > 10;
    }, null, { timeout: 30000 });
    await page.reload();
    const b = page.locator('.msg.assistant').last();
    await b.waitFor();
    checkEq(await b.locator('.note').textContent(), 'Stopped.', 'reloaded partial answer is marked stopped');
    check((await b.locator('.content').textContent()).length > 10, 'partial answer kept over the reload');
    const t0 = Date.now();
    while ((await api(server, '/props')).slots[0].busy) {
      check(Date.now() - t0 < 2000, 'slot still busy 2 s after the reload');
      await sleep(50);
    }
    await page.locator('#conv-list li').last().click(); // back to the first chat
  });

  await step('regenerate after stop works', async () => {
    await page.click('#open-settings');
    await page.fill('#s-max', '8');
    await page.click('#settings button[value=close]');
    await a.locator('button.regenerate').click();
    await page.locator('.msg.assistant .metrics .m-gen').waitFor({ timeout: 30000 });
    checkEq(await page.locator('.msg.assistant .note').textContent(), 'Cut at the token limit.', 'regenerated to the limit');
  });
  checkNoErrors(page);
});
