// The Organizer app: an organizer signs in, picks or creates a room, sees
// everyone's messages in <parley-chat> and can delete any of them.
import "@parley/chat"; // registers <parley-chat>
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App.tsx";
import "./app.css";

const root = document.getElementById("root");
if (!root) throw new Error("index.html has no #root");
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
