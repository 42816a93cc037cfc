// Starts kinesalite, a third-party Kinesis implementation, for the
// protocol-fidelity tests. Its CLI binds every interface, so it is started
// through its JS API on 127.0.0.1 only. Prints the endpoint on stdout; exits
// at once on SIGTERM or SIGINT (its data is in memory; server.close() would
// wait for clients' keep-alive connections).
import kinesalite from 'kinesalite';

const server = kinesalite({
  createStreamMs: 0,
  deleteStreamMs: 0,
  updateStreamMs: 0,
  shardLimit: 100,
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`kinesalite listening on http://127.0.0.1:${server.address().port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
