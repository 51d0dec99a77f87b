/* Drift: every open finding (GET /api/drift, computed by the console) with since-when and
 * what to do about it. */
'use strict';

const DRIFT_ADVICE = {
	policy: 'The agent runs another policy than the one approved for its group. Redeploy the approved version, or find who applied a policy outside the console (the agent\'s monitor records name them).',
	rules: 'The steering rules that send packets to elsd are missing: traffic bypasses the filter. Run `systemctl restart elsd-rules` on the host and find what flushed the ruleset.',
	listener: 'A service listens on a port no permit covers. Stop the service, or register the port and propose a policy that permits it.',
	monitor: 'The monitor chain does not verify: records were altered, inserted or deleted. Preserve the file and run `els-log --verify` on it; treat the host as compromised until explained.',
	expired_permit: 'A permit in the running policy has passed its registry expiry date. Renew the registry entry after review, or propose a policy without the permit.',
	silent: 'The agent has not reported within the silence limit. Check that the host is up, elsd runs and its connection to the console is allowed.',
};

ELS.page('drift', async () => {
	const { el, get, table, badge, when, ago } = ELS;
	const data = await get('/api/drift');
	const rows = Array.isArray(data) ? data : data.drift || data.findings || [];
	const box = document.getElementById('drift');
	box.appendChild(el('p', { class: 'rowcount', id: 'rowcount' }, `${rows.length} open findings`));
	box.appendChild(table([
		{ label: 'Agent', cell: (r) => el('a', { href: `/agent?id=${encodeURIComponent(r.agent_id)}` }, r.agent_id) },
		{ label: 'Group', cell: (r) => r.group || r.grp || '' },
		{ label: 'Kind', cell: (r) => badge(r.kind, 'drift') },
		{ label: 'Detail', key: 'detail' },
		{ label: 'Since', cell: (r) => `${when(r.since)} (${ago(r.since)})` },
		{ label: 'What to do', cell: (r) => DRIFT_ADVICE[r.kind] || '' },
	], rows, { id: 'drift-table' }));
});
