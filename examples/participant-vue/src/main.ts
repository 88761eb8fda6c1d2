// The Participation app: what an attendee sees. Sign in, join a room, chat.
import "@parley/chat"; // registers <parley-chat>
import { createApp } from "vue";
import App from "./App.vue";
import "./app.css";

createApp(App).mount("#app");
