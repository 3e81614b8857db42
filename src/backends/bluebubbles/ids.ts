import type { ChannelName } from "../../db/schema.js";
import { normaliseHandle } from "../../handles.js";

/**
 * BlueBubbles identifiers (backends.md §1.2). A 1:1 chat GUID is `<service>;-;<address>`, and
 * the same thread appears as `iMessage;-;X`, `SMS;-;X` or (macOS 26) `any;-;X`: compare threads
 * by address only. Groups are `iMessage;+;chat…`.
 */
export const isGroupGuid = (chatGuid: string) => chatGuid.includes(";+;");

export function dmGuid(channel: ChannelName, handle: string): string {
  return `${channel === "sms" ? "SMS" : "iMessage"};-;${handle}`;
}

/** The address of a 1:1 chat GUID, whichever service prefix it carries. */
export function dmAddress(chatGuid: string): string | null {
  const i = chatGuid.indexOf(";-;");
  return i < 0 ? null : chatGuid.slice(i + 3);
}

export function sameThread(a: string, b: string): boolean {
  if (isGroupGuid(a) || isGroupGuid(b)) return a === b;
  return dmAddress(a) === dmAddress(b);
}

/** A device address as our handle (E.164 or lower-case email); null when it is neither. */
export function handleOf(address: string | undefined | null): string | null {
  if (!address) return null;
  return normaliseHandle(address)?.handle ?? null;
}

/** Tapback targets are `p:<part>/<guid>` or `bp:<guid>` (chat.db convention). */
export function tapbackTarget(associatedMessageGuid: string): string {
  const slash = associatedMessageGuid.indexOf("/");
  if (slash >= 0) return associatedMessageGuid.slice(slash + 1);
  return associatedMessageGuid.replace(/^bp:/, "");
}

/** Our effect names → Apple's expressive-send identifiers (backends.md §1.3). */
export const EFFECT_IDS: Record<string, string> = {
  slam: "com.apple.MobileSMS.expressivesend.impact",
  loud: "com.apple.MobileSMS.expressivesend.loud",
  gentle: "com.apple.MobileSMS.expressivesend.gentle",
  invisible_ink: "com.apple.MobileSMS.expressivesend.invisibleink",
  echo: "com.apple.messages.effect.CKEchoEffect",
  spotlight: "com.apple.messages.effect.CKSpotlightEffect",
  balloons: "com.apple.messages.effect.CKHappyBirthdayEffect",
  confetti: "com.apple.messages.effect.CKConfettiEffect",
  love: "com.apple.messages.effect.CKHeartEffect",
  lasers: "com.apple.messages.effect.CKLasersEffect",
  fireworks: "com.apple.messages.effect.CKFireworksEffect",
  shooting_star: "com.apple.messages.effect.CKShootingStarEffect",
  celebration: "com.apple.messages.effect.CKSparklesEffect",
};

/** The message id we sent as `tempGuid`: attachment parts carry `<id>:<n>`. */
export const messageIdOfTempGuid = (tempGuid: string) => tempGuid.split(":")[0] ?? tempGuid;
