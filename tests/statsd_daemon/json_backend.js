/*
 * A statsd backend for fxa_metrics' integration test: on every flush it appends
 * one JSON line with what statsd itself computed (counters, timer_data with
 * count/upper/lower, gauges, sets) to the file named by `jsonBackend.file` in
 * the daemon's config. The write is synchronous on purpose: statsd runs its
 * final flush from process.on('exit') (after SIGTERM), where only synchronous
 * work completes.
 */
const fs = require('fs');

exports.init = function (startupTime, config, events) {
  const file = config.jsonBackend && config.jsonBackend.file;
  if (!file) {
    return false;
  }
  events.on('flush', function (timestamp, metrics) {
    const sets = {};
    for (const key in metrics.sets) {
      sets[key] = metrics.sets[key].values();
    }
    const line = JSON.stringify({
      timestamp: timestamp,
      counters: metrics.counters,
      timers: metrics.timers,
      timer_data: metrics.timer_data,
      gauges: metrics.gauges,
      sets: sets,
    });
    fs.appendFileSync(file, line + '\n');
  });
  return true;
};
