/* Registry: the enterprise PPS registry (GET /api/registry), sortable by any column, with
 * expiry warnings (expired, 7 and 30 days) and hits: flows admitted per permit across the
 * fleet in the last 30 days (GET /api/traffic?kind=admits_by_permit). */
'use strict';

ELS.page('registry', async () => {
	const { el, clear, get, table } = ELS;
	const to = new Date();
	const from = new Date(to.getTime() - 30 * 86400000);
	const [reg, hits] = await Promise.all([
		get('/api/registry'),
		get(`/api/traffic?kind=admits_by_permit&from=${from.toISOString()}&to=${to.toISOString()}`),
	]);
	const rows = Array.isArray(reg) ? reg : reg.registry || reg.entries || [];
	const byPermit = new Map();
	for (const r of (hits.admits_by_permit || { rows: [] }).rows) byPermit.set(r.permit, r);
	for (const r of rows) {
		const h = byPermit.get(r.id);
		r.hits = h ? h.flows : 0;
		r.hit_agents = h ? h.agents : 0;
	}
	const columns = [
		{ key: 'id', label: 'Permit', cls: 'mono' },
		{ key: 'proto', label: 'Proto' },
		{ key: 'port', label: 'Port' },
		{ key: 'service', label: 'Service' },
		{ key: 'direction', label: 'Dir' },
		{ key: 'owner', label: 'Owner' },
		{ key: 'category', label: 'Category' },
		{ key: 'justification', label: 'Justification' },
		{ key: 'mitigations', label: 'Mitigations' },
		{ key: 'reviewed_at', label: 'Reviewed' },
		{ key: 'expires_at', label: 'Expires', cell: (r) => ELS.expiry(r.expires_at) },
		{ key: 'hits', label: 'Hits (30 d)', cls: 'num' },
		{ key: 'hit_agents', label: 'Agents', cls: 'num' },
	];
	let sortKey = 'expires_at';
	let sortDir = 1;
	function render() {
		rows.sort((a, b) => {
			const x = a[sortKey], y = b[sortKey];
			if (x === y) return 0;
			if (x === null || x === undefined || x === '') return 1; /* blanks last either way */
			if (y === null || y === undefined || y === '') return -1;
			return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * sortDir;
		});
		const box = clear(document.getElementById('registry'));
		const t = table(columns, rows, { id: 'registry-table' });
		t.querySelectorAll('th').forEach((th, i) => {
			th.className = 'sortable';
			th.dataset.key = columns[i].key;
			th.addEventListener('click', () => {
				sortDir = sortKey === columns[i].key ? -sortDir : 1;
				sortKey = columns[i].key;
				render();
			});
		});
		box.appendChild(el('p', { class: 'rowcount' }, `${rows.length} entries, sorted by ${sortKey} ${sortDir > 0 ? 'ascending' : 'descending'}`));
		box.appendChild(t);
	}
	render();
});
