/* Audit: every console action and refusal (GET /api/audit) with identity, time and outcome. */
'use strict';

ELS.page('audit', async () => {
	const { el, clear, get, table, badge, when } = ELS;
	const q = document.getElementById('q');
	const data = await get('/api/audit');
	const rows = Array.isArray(data) ? data : data.audit || data.entries || [];
	const columns = [
		{ label: 'Time', cell: (r) => when(r.ts), cls: 'nowrap' },
		{ label: 'Identity', key: 'identity' },
		{ label: 'Role', key: 'role' },
		{ label: 'Console', key: 'console' },
		{ label: 'Action', key: 'action', cls: 'mono' },
		{ label: 'Target', key: 'target', cls: 'mono' },
		{ label: 'Outcome', cell: (r) => badge(r.outcome, /^(ok|done|approved|success)/.test(r.outcome || '') ? 'ok' : 'denied') },
		{ label: 'Detail', cell: (r) => (r.detail === null || r.detail === undefined ? '' : typeof r.detail === 'string' ? r.detail : JSON.stringify(r.detail)), cls: 'mono' },
	];
	function render() {
		const needle = q.value.trim().toLowerCase();
		const shown = needle ? rows.filter((r) => [r.identity, r.action, r.target, r.outcome].some((v) => String(v || '').toLowerCase().includes(needle))) : rows;
		const box = clear(document.getElementById('audit'));
		box.appendChild(el('p', { class: 'rowcount', id: 'rowcount' }, `${shown.length} of ${rows.length} entries`));
		box.appendChild(table(columns, shown, { id: 'audit-table' }));
	}
	q.addEventListener('input', render);
	document.getElementById('filters').addEventListener('submit', (e) => { e.preventDefault(); render(); });
	render();
});
