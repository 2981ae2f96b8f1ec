import pg from 'pg';
it('reaches the test database', async () => {
  const c = new pg.Client(process.env.TEST_DATABASE_URL);
  await c.connect();
  const r = await c.query('select version()');
  await c.end();
  expect(r.rows[0].version).toMatch(/PostgreSQL/);
});
