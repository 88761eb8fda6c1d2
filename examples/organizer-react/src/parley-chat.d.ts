// <parley-chat> in TSX: the attributes React passes to the custom element.
import type { DetailedHTMLProps, HTMLAttributes } from "react";
import type { ParleyChatElement } from "@parley/chat";

declare module "react" {
  namespace JSX {
    interface IntrinsicElements {
      "parley-chat": DetailedHTMLProps<HTMLAttributes<ParleyChatElement>, ParleyChatElement> & {
        room: string;
        gateway?: string;
        token?: string;
        format?: "proto" | "json";
        "history-limit"?: number;
        mode?: "organizer" | "participant";
      };
    }
  }
}
