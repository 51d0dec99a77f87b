/* Fleet: every agent with group, version, last seen, policy version and drift state. The
 * server filters and counts (PostgreSQL); this page only builds the table, with text nodes.
 * When the table is in the DOM, body[data-rendered-ms] holds performance.now(): milliseconds
 * since navigation started, what the browser test reports for 10,000 agents. */
'use strict';

/* compact=1: one array per agent (a third of the bytes of objects) */
const fleetUrl = (query) => `/api/fleet?${query ? `${query}&` : ''}compact=1`;

/* The first answer is asked for while the page still loads, before GET /api/me. */
const prefetched = (() => {
	const p = new URLSearchParams();
	for (const k of ['q', 'group', 'state']) {
		const v = new URLSearchParams(location.search).get(k);
		if (v && v.trim()) p.set(k, v.trim());
	}
	const answer = ELS.get(fleetUrl(p.toString()));
	answer.catch(() => {}); /* reported by the load that uses it */
	return { query: p.toString(), answer };
})();

ELS.page('fleet', async () => {
	const { el, clear, get, badge, ago } = ELS;
	const q = document.getElementById('q');
	const group = document.getElementById('group');
	const state = document.getElementById('state');
	const params = new URLSearchParams(location.search);
	q.value = params.get('q') || '';
	state.value = params.get('state') || '';
	let groupsFilled = false;
	if (params.get('group')) group.appendChild(el('option', { value: params.get('group') }, params.get('group')));
	group.value = params.get('group') || '';
	let seq = 0;

	const columns = [
		{ label: 'Agent', width: '11%', cell: (a) => el('a', { href: `/agent?id=${encodeURIComponent(a.id)}` }, a.id) },
		{ label: 'Host', width: '20%', key: 'host' },
		{ label: 'Group', width: '7%', key: 'group' },
		{ label: 'Version', width: '7%', key: 'version' },
		{ label: 'Last seen', width: '10%', cell: (a) => ago(a.last_seen), class: (a) => (a.connected ? null : 'muted') },
		{ label: 'Policy', width: '12%', cell: (a) => (a.policy_version ? `v${a.policy_version}` : a.policy_sha256 || '—'), cls: 'mono' },
		{ label: 'State', width: '8%', cell: (a) => badge(a.state) },
		{ label: 'Drift', cell: (a) => (a.drift || []).join(', ') },
	];

	function countButtons(counts, total) {
		const box = clear(document.getElementById('counts'));
		const add = (value, label, n) => box.appendChild(el('button', {
			type: 'button', class: state.value === value ? 'active' : null, dataset: { state: value },
			onclick: () => { state.value = value; load(); },
		}, label, el('strong', null, String(n))));
		add('', 'All', total);
		for (const s of ['ok', 'drift', 'silent']) add(s, s, counts[s] || 0);
	}

	async function load() {
		const mine = ++seq;
		const p = new URLSearchParams();
		if (q.value.trim()) p.set('q', q.value.trim());
		if (group.value) p.set('group', group.value);
		if (state.value) p.set('state', state.value);
		history.replaceState(null, '', p.toString() ? `/fleet?${p}` : '/fleet');
		const query = p.toString();
		const data = await (query === prefetched.query ? prefetched.answer : get(fleetUrl(query)));
		prefetched.query = null;
		if (mine !== seq) return; /* a newer request is under way */
		const cols = data.columns;
		data.agents = data.agents.map((row) => Object.fromEntries(cols.map((c, i) => [c, row[i]])));
		if (!groupsFilled) {
			const want = params.get('group') || '';
			clear(group).appendChild(el('option', { value: '' }, 'all groups'));
			for (const g of data.groups) group.appendChild(el('option', { value: g.name }, `${g.name} (${g.agents})`));
			group.value = want;
			groupsFilled = true;
		}
		countButtons(data.counts, data.total);
		document.getElementById('rowcount').textContent =
			`${data.agents.length} of ${data.total} agents shown` + (data.truncated ? ' (narrow the search to see the rest)' : '');
		const box = clear(document.getElementById('fleet'));
		box.appendChild(ELS.bigTable(columns, data.agents, { id: 'fleet-table', dataset: { rows: data.agents.length } }));
		/* after layout and paint of this frame */
		requestAnimationFrame(() => setTimeout(() => {
			document.body.dataset.renderedMs = String(Math.round(performance.now()));
			document.body.dataset.rows = String(data.agents.length);
		}, 0));
	}

	let timer = null;
	q.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(load, 250); });
	group.addEventListener('change', load);
	state.addEventListener('change', load);
	document.getElementById('filters').addEventListener('submit', (e) => { e.preventDefault(); load(); });
	await load();
});
