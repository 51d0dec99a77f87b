/* Traffic: what the sweeps carried into the enterprise database, over a chosen time range
 * (GET /api/traffic, aggregated in PostgreSQL). Each table has its chart (Chart.js, Debian's
 * libjs-chart.js) above it and a CSV download of exactly that table. */
'use strict';

const TRAFFIC_TABLES = [
	{ kind: 'drops_by_group', title: 'Drops per hour by group', chart: 'hourly', value: 'packets' },
	{ kind: 'blocked_ports', title: 'Top blocked ports', chart: 'bar', label: (r) => `${r.proto}/${r.port}`, value: 'packets' },
	{ kind: 'blocked_sources', title: 'Top blocked sources', chart: 'bar', label: (r) => r.src, value: 'packets' },
	{ kind: 'would_drops', title: 'Would-drops per hour by group (observe mode)', chart: 'hourly', value: 'packets' },
	{ kind: 'admits_by_permit', title: 'Admitted flows per permit', chart: 'bar', label: (r) => r.permit, value: 'flows' },
];
const PALETTE = ['#1f5fa8', '#b3261e', '#1e7b34', '#a86400', '#6b3fa0', '#00838f', '#5d4037', '#c2185b'];

ELS.page('traffic', async () => {
	const { el, clear, get, table, when } = ELS;
	const fromIn = document.getElementById('from');
	const toIn = document.getElementById('to');
	const local = (d) => d.toISOString().slice(0, 16); /* the inputs hold UTC */
	const p = new URLSearchParams(location.search);
	const now = new Date();
	fromIn.value = p.get('from') ? p.get('from').slice(0, 16) : local(new Date(now.getTime() - 24 * 3600000));
	toIn.value = p.get('to') ? p.get('to').slice(0, 16) : local(new Date(now.getTime() + 3600000));
	const charts = [];

	function chartFor(t, rows) {
		if (typeof Chart === 'undefined') /* libjs-chart.js not installed: tables only */
			return el('p', { class: 'note' }, 'Charts need libjs-chart.js on the console host.');
		const canvas = el('canvas', { id: `chart-${t.kind}`, 'aria-label': t.title, role: 'img' });
		const wrap = el('div', { class: 'chart' }, canvas);
		let config;
		if (t.chart === 'hourly') {
			const hours = [...new Set(rows.map((r) => r.hour))].sort();
			const groups = [...new Set(rows.map((r) => r.group))].sort();
			const index = new Map(hours.map((h, i) => [h, i]));
			const datasets = groups.map((g, i) => {
				const data = new Array(hours.length).fill(0);
				for (const r of rows) if (r.group === g) data[index.get(r.hour)] = r[t.value];
				return { label: g, data, backgroundColor: PALETTE[i % PALETTE.length] };
			});
			config = {
				type: 'bar',
				data: { labels: hours.map((h) => when(h).slice(5, 16)), datasets },
				options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
			};
		} else {
			config = {
				type: 'bar',
				data: { labels: rows.map(t.label), datasets: [{ label: t.value, data: rows.map((r) => r[t.value]), backgroundColor: PALETTE[0] }] },
				options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } },
			};
		}
		config.options.animation = false;
		config.options.maintainAspectRatio = false;
		charts.push(new Chart(canvas, config)); /* labels reach the canvas as text, never markup */
		return wrap;
	}

	async function load() {
		const range = new URLSearchParams({ from: `${fromIn.value}:00Z`, to: `${toIn.value}:00Z` });
		history.replaceState(null, '', `/traffic?${range}`);
		const data = await get(`/api/traffic?${range}`);
		while (charts.length) charts.pop().destroy();
		const box = clear(document.getElementById('tables'));
		for (const t of TRAFFIC_TABLES) {
			const tab = data[t.kind] || { columns: [], rows: [] };
			const csv = new URLSearchParams(range);
			csv.set('kind', t.kind);
			csv.set('format', 'csv');
			const section = el('section', { class: 'card', id: `section-${t.kind}` },
				el('h2', null, t.title, ' ', el('a', { href: `/api/traffic?${csv}`, download: `${t.kind}.csv`, class: 'csv' }, 'CSV')));
			if (!tab.rows.length) {
				section.appendChild(el('p', { class: 'note' }, 'Nothing in this range.'));
			} else {
				section.appendChild(chartFor(t, tab.rows));
				section.appendChild(table(tab.columns.map((c) => ({
					label: c,
					cell: (r) => (c === 'hour' ? when(r[c]) : r[c]),
					cls: typeof tab.rows[0][c] === 'number' ? 'num' : null,
				})), tab.rows, { id: `table-${t.kind}` }));
			}
			box.appendChild(section);
		}
	}

	document.getElementById('range').addEventListener('submit', (e) => {
		e.preventDefault();
		load().catch((err) => ELS.status(ELS.errorText(err)));
	});
	await load();
});
