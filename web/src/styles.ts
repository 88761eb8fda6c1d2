// styles: the shadow-root stylesheet of <parley-chat>. Every colour, font
// and size an app may want to change is a CSS custom property (--parley-*);
// the parts named with part="..." can be styled from outside with ::part().
// Error states (unknown room, sign-in needed, a refused message) use
// --parley-error, never the "connected" green.
//
// Custom properties: --parley-font, --parley-font-size, --parley-fg,
// --parley-bg, --parley-muted, --parley-accent, --parley-accent-fg,
// --parley-link, --parley-border, --parley-radius, --parley-height,
// --parley-online, --parley-warning, --parley-offline, --parley-error,
// --parley-pending-opacity, --parley-input-bg.
// Parts: container, header, title, status, log, load-older, messages,
// message, pending, day, author, time, body, link, edited, actions, edit,
// delete, edit-form, edit-input, edit-save, edit-cancel, edit-error,
// action-error, announcer, composer, input, send, composer-error, presence,
// typing, composer-notice, unread-divider, moderation, room-mode-label,
// room-mode, moderation-error, moderate, mute-timed, mute, unmute,
// remove-user.
export const STYLE = `
:host {
  display: block;
  box-sizing: border-box;
  height: var(--parley-height, 28rem);
  font-family: var(--parley-font, system-ui, -apple-system, "Segoe UI", sans-serif);
  font-size: var(--parley-font-size, 0.95rem);
  color: var(--parley-fg, #1d2330);
  background: var(--parley-bg, #ffffff);
  border: 1px solid var(--parley-border, #d5d9e0);
  border-radius: var(--parley-radius, 8px);
  overflow: hidden;
}
:host([hidden]) { display: none; }
[hidden] { display: none !important; }
.visually-hidden {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0;
  overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap;
}
.chat { display: flex; flex-direction: column; height: 100%; }
header {
  display: flex; align-items: center; justify-content: space-between; gap: 0.5rem;
  padding: 0.5rem 0.75rem; border-bottom: 1px solid var(--parley-border, #d5d9e0);
}
.title { font-weight: 600; }
.status { font-size: 0.8em; color: var(--parley-muted, #667085); display: inline-flex; align-items: center; gap: 0.35em; }
.status::before {
  content: ""; flex: none; width: 0.55em; height: 0.55em; border-radius: 50%;
  background: var(--parley-status-color, #98a2b3);
}
.status[data-state="live"] { --parley-status-color: var(--parley-online, #12b76a); }
.status[data-state="offline"], .status[data-state="reconnecting"] { --parley-status-color: var(--parley-offline, #f04438); color: var(--parley-offline, #f04438); }
.status[data-state="catching-up"], .status[data-state="connecting"] { --parley-status-color: var(--parley-warning, #f79009); }
.status[data-state="error"], .status[data-state="unauthenticated"] {
  --parley-status-color: var(--parley-error, #d92d20); color: var(--parley-error, #d92d20); font-weight: 600;
}
.log { flex: 1; overflow-y: auto; padding: 0.5rem 0.75rem; }
ol { list-style: none; margin: 0; padding: 0; }
li { padding: 0.25rem 0; line-height: 1.35; overflow-wrap: anywhere; }
li.day {
  display: flex; align-items: center; gap: 0.6em; margin: 0.4rem 0; padding: 0;
  color: var(--parley-muted, #667085); font-size: 0.75em; font-weight: 600;
}
li.day::before, li.day::after { content: ""; flex: 1; border-top: 1px solid var(--parley-border, #d5d9e0); }
.author { font-weight: 600; margin-right: 0.4em; }
.time { color: var(--parley-muted, #667085); font-size: 0.75em; margin-right: 0.4em; }
.body { white-space: pre-wrap; }
.body a { color: var(--parley-link, var(--parley-accent, #3559e0)); }
li[data-mine] .author { color: var(--parley-accent, #3559e0); }
li[data-pending="true"] { opacity: var(--parley-pending-opacity, 0.55); }
li[data-deleted] .body { font-style: italic; color: var(--parley-muted, #667085); }
.edited { color: var(--parley-muted, #667085); font-size: 0.75em; margin-left: 0.4em; }
.actions { margin-left: 0.5em; visibility: hidden; }
li:hover .actions, li:focus-within .actions { visibility: visible; }
.actions button {
  font: inherit; font-size: 0.75em; background: none; border: 0; padding: 0 0.3em; cursor: pointer;
  color: var(--parley-muted, #667085); text-decoration: underline;
}
.actions button[data-confirm] { color: var(--parley-error, #d92d20); font-weight: 600; }
.edit-form { display: flex; flex-wrap: wrap; gap: 0.35rem; margin-top: 0.25rem; }
.edit-form textarea { flex: 1 1 100%; }
.edit-form button { font: inherit; font-size: 0.85em; cursor: pointer; }
.older { display: block; margin: 0 auto 0.5rem; font: inherit; font-size: 0.8em; background: none;
  border: 1px solid var(--parley-border, #d5d9e0); border-radius: var(--parley-radius, 8px); padding: 0.2rem 0.6rem; cursor: pointer; }
.empty { color: var(--parley-muted, #667085); font-size: 0.85em; text-align: center; padding: 1rem 0; }
form.composer { display: flex; flex-wrap: wrap; gap: 0.5rem; padding: 0.5rem; border-top: 1px solid var(--parley-border, #d5d9e0); }
form.composer textarea { flex: 1; }
textarea {
  resize: none; font: inherit; color: inherit; background: var(--parley-input-bg, transparent);
  border: 1px solid var(--parley-border, #d5d9e0); border-radius: var(--parley-radius, 8px); padding: 0.4rem 0.5rem;
}
textarea[aria-invalid="true"] { border-color: var(--parley-error, #d92d20); }
.error { flex: 1 1 100%; margin: 0; font-size: 0.8em; color: var(--parley-error, #d92d20); }
button.send {
  font: inherit; border: 0; border-radius: var(--parley-radius, 8px); padding: 0 1rem; cursor: pointer;
  background: var(--parley-accent, #3559e0); color: var(--parley-accent-fg, #ffffff);
}
textarea:disabled, button:disabled { opacity: 0.5; cursor: not-allowed; }
.presence-line { font-size: 0.8em; color: var(--parley-muted, #667085); margin-left: auto; }
.moderation-bar {
  display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem; padding: 0.35rem 0.75rem;
  font-size: 0.85em; border-bottom: 1px solid var(--parley-border, #d5d9e0);
}
.moderation-bar select { font: inherit; }
.moderate-actions { margin-left: 0.5em; visibility: hidden; }
li:hover .moderate-actions, li:focus-within .moderate-actions { visibility: visible; }
.moderate-actions button {
  font: inherit; font-size: 0.75em; background: none; border: 0; padding: 0 0.3em; cursor: pointer;
  color: var(--parley-muted, #667085); text-decoration: underline;
}
.moderate-actions button[data-confirm] { color: var(--parley-error, #d92d20); font-weight: 600; }
li.unread {
  display: flex; align-items: center; gap: 0.6em; margin: 0.4rem 0; padding: 0;
  color: var(--parley-error, #d92d20); font-size: 0.75em; font-weight: 600;
}
li.unread::after { content: ""; flex: 1; border-top: 1px solid var(--parley-error, #d92d20); }
.typing-line { margin: 0; padding: 0 0.75rem; min-height: 1.35em; line-height: 1.35; font-size: 0.8em; font-style: italic; color: var(--parley-muted, #667085); }
.composer-notice { flex: 1 1 100%; margin: 0; font-size: 0.85em; color: var(--parley-warning, #b54708); }
`;
