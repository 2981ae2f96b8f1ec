/**
 * Preloaded (`node --import`) into the controller the convergence benchmark starts, which
 * it gives an IPC channel for this only: when the benchmark dies without cleaning up
 * (killed, crashed), the channel closes and the controller shuts down like on SIGTERM
 * instead of living on as an orphan. The channel never keeps the process alive.
 */
if (process.channel) {
  process.channel.unref();
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
