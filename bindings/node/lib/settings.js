'use strict';
// Producer options to kpl-core settings (KPL names).

/** Option names that are not KPL settings. */
const NOT_SETTINGS = new Set([]);

function toSettings(options) {
  if (options == null) return [];
  if (typeof options !== 'object') throw new TypeError('producer options must be an object');
  const settings = [];
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || NOT_SETTINGS.has(name)) continue;
    settings.push([name, value === null ? '' : String(value)]);
  }
  return settings;
}

module.exports = { toSettings };
