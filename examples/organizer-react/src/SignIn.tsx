import { useState } from "react";

/** Development sign-in (a token from the gateway's --dev endpoint) or a
 * token from the platform's own login, pasted. */
export function SignIn(props: { onDevSignIn: (user: string, name: string) => void; onToken: (token: string) => void }) {
  const [name, setName] = useState("");
  const [token, setToken] = useState("");
  return (
    <div className="signin">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const n = name.trim();
          if (n) props.onDevSignIn(`org-${n.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`, n);
        }}
      >
        <label>
          Your name <input value={name} onChange={(e) => setName(e.target.value)} autoFocus required />
        </label>
        <button type="submit">Sign in as organizer (dev)</button>
      </form>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (token.trim()) props.onToken(token.trim());
        }}
      >
        <label>
          or a token <input value={token} onChange={(e) => setToken(e.target.value)} placeholder="eyJhbGciOi…" />
        </label>
        <button type="submit">Use token</button>
      </form>
    </div>
  );
}
