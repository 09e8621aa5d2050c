// Crieur's service worker: shows the notices pushed to this browser (services/webpush).
// A correction carries the same tag and replaces the notification shown; a withdrawal
// (`action: remove`) closes it; a click opens the notice's page.
"use strict";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

async function crieurPush(notice) {
  const shown = await self.registration.getNotifications({ tag: notice.tag });
  if (notice.action === "remove") {
    shown.forEach((n) => n.close());
    return;
  }
  await self.registration.showNotification(notice.title, {
    body: notice.body,
    tag: notice.tag,
    lang: "fr",
    icon: "/api/v1/webpush/icon.svg",
    // The notice's first photo, shown large by the browsers that can.
    ...(notice.image ? { image: notice.image } : {}),
    // A correction of a notification still on screen says so again.
    renotify: shown.length > 0,
    requireInteraction: notice.category === "alerte",
    data: { url: notice.url, notice_id: notice.notice_id, version: notice.version },
  });
}
self.crieurPush = crieurPush;

self.addEventListener("push", (event) => {
  let notice;
  try {
    notice = event.data.json();
  } catch (error) {
    return;
  }
  event.waitUntil(crieurPush(notice));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data && event.notification.data.url;
  if (url) event.waitUntil(self.clients.openWindow(url));
});
