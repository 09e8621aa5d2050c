// The commune page's « Recevoir les alertes sur cet appareil » (services/webpush/web.py):
// registers the service worker, subscribes the browser with the VAPID key, and tells
// Crieur which categories of this commune it follows (kept with its other communes').
"use strict";

(async () => {
  const section = document.getElementById("webpush");
  if (!section || !("serviceWorker" in navigator) || !("PushManager" in window)) return;
  const form = section.querySelector("form");
  const status = section.querySelector("[data-status]");
  const remove = section.querySelector("[data-remove]");
  const commune = section.dataset.commune;
  const say = (text) => { status.textContent = text; };
  const post = (path, body) => fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const registration = await navigator.serviceWorker.register("/api/v1/webpush/sw.js",
                                                              { scope: "/communes/" });
  section.hidden = false;

  async function following(subscription) {
    if (!subscription) return [];
    const answer = await post("/api/v1/subscriptions/webpush/current",
                              { endpoint: subscription.endpoint });
    return answer.ok ? (await answer.json()).follows : [];
  }

  function show(follows) {
    const here = follows.find((f) => f.commune === commune);
    for (const box of form.querySelectorAll("input[name=categories]")) {
      if (here) box.checked = here.categories.includes(box.value);
    }
    remove.hidden = !here;
    say(here ? "Cet appareil reçoit les avis choisis de la commune." : "");
  }

  show(await following(await registration.pushManager.getSubscription()));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const categories = [...form.querySelectorAll("input[name=categories]:checked")]
      .map((box) => box.value);
    if (!categories.length) return say("Cochez au moins un type d'avis.");
    if (await Notification.requestPermission() !== "granted") {
      return say("Les notifications sont bloquées pour ce site dans votre navigateur.");
    }
    try {
      const key = (await (await fetch("/api/v1/webpush/key")).json()).public_key;
      const subscription = await registration.pushManager.getSubscription()
        || await registration.pushManager.subscribe({ userVisibleOnly: true,
                                                      applicationServerKey: key });
      const others = (await following(subscription)).filter((f) => f.commune !== commune);
      const follows = [...others, { commune, categories }];
      const answer = await post("/api/v1/subscriptions/webpush",
                                { subscription: subscription.toJSON(), follows });
      if (!answer.ok) throw new Error(String(answer.status));
      show(follows);
      say("C'est fait : cet appareil recevra les avis choisis.");
    } catch (error) {
      say("L'abonnement n'a pas pu être enregistré ; réessayez plus tard.");
    }
  });

  remove.addEventListener("click", async () => {
    const subscription = await registration.pushManager.getSubscription();
    if (!subscription) return show([]);
    const others = (await following(subscription)).filter((f) => f.commune !== commune);
    if (others.length) {
      await post("/api/v1/subscriptions/webpush",
                 { subscription: subscription.toJSON(), follows: others });
    } else {
      await post("/api/v1/subscriptions/webpush/delete", { endpoint: subscription.endpoint });
      await subscription.unsubscribe();
    }
    show([]);
    say("Cet appareil ne recevra plus les avis de la commune.");
  });
})();
