/* Agent: one agent's status, running policy (its permits with their registry entries),
 * listeners against permits, recent drops and would_drops, admitted flows per permit and its
 * deployment history, from GET /api/agents/{id}. */
'use strict';

ELS.page('agent', async () => {
	const { el, get, table, badge, when, ago, status } = ELS;
	const id = ELS.param('id');
	if (!id) { status('No agent named: open this page from the fleet list.'); return; }
	const d = await get(`/api/agents/${encodeURIComponent(id)}`);
	const a = d.agent;
	document.getElementById('title').textContent = `Agent ${a.id}`;
	document.title = `els-console: ${a.id}`;
	const box = document.getElementById('agent');
	const yesno = (v, good, bad) => (v === null || v === undefined ? badge('unknown', 'silent') : v ? badge(good, 'ok') : badge(bad, 'silent'));

	const facts = el('dl', { class: 'facts', id: 'facts' });
	const fact = (k, v) => facts.append(el('dt', null, k), el('dd', null, v));
	fact('State', el('span', null, badge(a.state), (d.drift || []).map((x) => badge(x.kind, 'drift'))));
	fact('Host', a.host || '—');
	fact('Group', a.group || '—');
	fact('Version', a.version || '—');
	fact('Connection', a.connected ? `connected to ${a.connected_to}` : 'not connected');
	fact('Last seen', `${when(a.last_seen)} (${ago(a.last_seen)})`);
	fact('First seen', when(a.first_seen));
	fact('Running policy', el('span', { class: 'mono' },
		d.policy ? `v${d.policy.version} (${d.policy.state}) ` : 'not a known version ',
		a.policy_sha256 ? a.policy_sha256.slice(0, 16) : '—',
		a.policy_generation !== null && a.policy_generation !== undefined ? ` generation ${a.policy_generation}` : ''));
	if (d.approved) fact('Approved for the group', el('span', { class: 'mono' }, `v${d.approved.version} ${d.approved.sha256.slice(0, 16)}`));
	fact('Managed by console', a.managed ? 'yes' : 'no');
	fact('Steering rules', yesno(a.rules_ok, 'present', 'missing'));
	fact('Monitor chain', yesno(a.monitor_ok, 'verifies', 'fails'));
	fact('Certificate expires', when(a.cert_not_after));
	const c = a.counters || {};
	fact('Counters', `dropped ${c.dropped ?? '—'}, admitted ${c.admitted ?? '—'}, would_drop ${c.would_drop ?? '—'}`);
	box.appendChild(el('section', { class: 'card' }, el('h2', null, 'Status'), facts));

	if ((d.drift || []).length)
		box.appendChild(el('section', { class: 'card' }, el('h2', null, 'Open drift findings'), table([
			{ label: 'Kind', cell: (x) => badge(x.kind, 'drift') },
			{ label: 'Detail', key: 'detail' },
			{ label: 'Since', cell: (x) => when(x.since) },
		], d.drift, { id: 'drift-table' })));

	box.appendChild(el('section', { class: 'card' }, el('h2', null, 'Running policy: permits and their registry entries'), table([
		{ label: 'Permit', key: 'id', cls: 'mono' },
		{ label: 'Proto', key: 'proto' },
		{ label: 'Port', key: 'port' },
		{ label: 'Dir', key: 'dir' },
		{ label: 'Service', cell: (p) => (p.registry ? p.registry.service : badge('not in registry', 'expired')) },
		{ label: 'Justification', cell: (p) => p.registry && p.registry.justification },
		{ label: 'Owner', cell: (p) => p.registry && p.registry.owner },
		{ label: 'Expires', cell: (p) => (p.registry ? ELS.expiry(p.registry.expires_at) : '') },
	], d.permits || [], { id: 'permits-table' })));

	box.appendChild(el('section', { class: 'card' }, el('h2', null, 'Listeners against permits'), table([
		{ label: 'Proto', key: 'proto' },
		{ label: 'Address', key: 'addr', cls: 'mono' },
		{ label: 'Port', key: 'port', cls: 'num' },
		{ label: 'Permitted by', cell: (l) => (l.permit ? l.permit : badge('no permit', 'expired')) },
	], d.listeners || [], { id: 'listeners-table' })));
	for (const tr of document.querySelectorAll('#listeners-table tbody tr'))
		if (tr.querySelector('.badge.expired')) tr.className = 'unpermitted';

	const flowCols = (extra) => [
		{ label: 'Time', cell: (r) => when(r.ts), cls: 'nowrap' },
		{ label: 'Proto', key: 'proto' },
		{ label: 'Source', cell: (r) => (r.sport ? `${r.src}:${r.sport}` : r.src), cls: 'mono' },
		{ label: 'Destination', cell: (r) => (r.dport ? `${r.dst}:${r.dport}` : r.dst), cls: 'mono' },
		{ label: 'Reason', key: 'reason' },
		extra,
	];
	box.appendChild(el('div', { class: 'grid2' },
		el('section', { class: 'card' }, el('h2', null, 'Recent drops'),
			table(flowCols({ label: 'Packets', key: 'packets', cls: 'num' }), d.drops || [], { id: 'drops-table' })),
		el('section', { class: 'card' }, el('h2', null, 'Recent would_drops (observe mode)'),
			table(flowCols({ label: 'Rule', key: 'rule_name' }), d.would_drops || [], { id: 'would-table' }))));

	box.appendChild(el('section', { class: 'card' }, el('h2', null, 'Flows admitted per permit (last 7 days)'), table([
		{ label: 'Permit', key: 'permit', cls: 'mono' },
		{ label: 'Flows', key: 'flows', cls: 'num' },
		{ label: 'Last', cell: (r) => when(r.last) },
	], d.admits || [], { id: 'admits-table' })));

	box.appendChild(el('section', { class: 'card' }, el('h2', null, 'Deployment history'), table([
		{ label: 'Deployment', key: 'deployment_id', cls: 'num' },
		{ label: 'Version', cell: (r) => `v${r.version}` },
		{ label: 'Started by', key: 'started_by' },
		{ label: 'Started', cell: (r) => when(r.created_at) },
		{ label: 'Wave', cell: (r) => (r.wave === 0 ? 'canary' : 'rest') },
		{ label: 'Deployment state', cell: (r) => badge(r.state) },
		{ label: 'This agent', cell: (r) => badge(r.target_state) },
		{ label: 'Done', cell: (r) => when(r.done_at) },
		{ label: 'Error', key: 'error' },
	], d.deployments || [], { id: 'deployments-table' })));
});

