// Live machine tiles: polls the API every 2 s. No external assets: factory networks are often offline.
const STATES = ["idle", "loading material", "processing", "unloading", "fault", "planned stop"];

async function getJson(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

function fmt(tag, v) {
  if (tag === "state" && typeof v === "number") return STATES[v] ?? String(v);
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(2);
  return String(v);
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const machines = await getJson("/api/v1/machines");
    const main = document.getElementById("machines");
    const tiles = await Promise.all(machines.map(async (m) => {
      const path = `/api/v1/machines/${m.tenant}/${m.site}/${m.line}/${m.machine}/latest`;
      const latest = await getJson(path);
      const tile = document.createElement("section");
      const state = latest.values.state ? latest.values.state.value : null;
      tile.className = "tile" + (state !== null ? ` state-${state}` : "");
      tile.dataset.machine = m.machine;
      const h = document.createElement("h2");
      h.textContent = m.machine;
      const where = document.createElement("div");
      where.className = "where";
      where.textContent = `${m.tenant} · ${m.site} · ${m.line}`;
      const table = document.createElement("table");
      for (const [tag, tv] of Object.entries(latest.values)) {
        const row = table.insertRow();
        row.insertCell().textContent = tag;
        const cell = row.insertCell();
        cell.className = "v";
        cell.dataset.tag = tag;
        cell.textContent = fmt(tag, tv.value);
      }
      tile.append(h, where, table);
      return tile;
    }));
    main.replaceChildren(...tiles);
    status.textContent = `${machines.length} machines · updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    status.textContent = `not updated: ${err.message}`;
  }
}

refresh();
setInterval(refresh, 2000);
