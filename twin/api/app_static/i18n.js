// The app's words in English and Russian. `t(key, vars)` picks the chosen language (a switch
// in the header; the browser's language the first time), falling back to English.
const WORDS = {
  en: {
    title: "twin", signIn: "Sign in", signInLead: "Sign in with an admin key, or open a link from `twin app-link`.",
    key: "Admin key", signOut: "Sign out", signOutEverywhere: "Sign out everywhere",
    dashboard: "Overview", chats: "Chats", accounts: "Accounts", today: "Today",
    received: "received", replied: "answered", skipped: "skipped", escalated: "escalated",
    failed: "failed", draftsWaiting: "Drafts waiting", activity: "Live activity",
    noActivity: "Nothing yet: new events appear here as they happen.",
    pause: "Pause", resume: "Resume", paused: "paused", active: "active",
    chat: "Chat", state: "State", lastMessage: "Last message", noChats: "No chats yet.",
    status: "Status", name: "Name", user: "User", loading: "Loading…",
    language: "Language", wrongKey: "That key was not accepted.",
    sessionEnded: "Your session has ended: sign in again.",
    connect: "Connect Telegram", accountName: "Account name", phone: "Phone number",
    sendCode: "Send the code", code: "Login code", verify: "Continue",
    password: "Two-step verification password", codeSentBy: "Telegram sent the code ({how}).",
    passwordNeeded: "This account has a two-step verification password.",
    passwordHint: "This account has a two-step verification password (hint: {hint}).",
    connectedAs: "Connected as {who}.", retryIn: "Try again in {s} s.",
    settings: "Settings", workingHours: "Working hours", timezone: "Time zone", save: "Save",
    saved: "Saved: the next message follows these hours.",
    hoursHelp: "Each day: spans like 09:00-13:00, 14:00-18:00; empty = closed.",
    day_mon: "Monday", day_tue: "Tuesday", day_wed: "Wednesday", day_thu: "Thursday",
    day_fri: "Friday", day_sat: "Saturday", day_sun: "Sunday",
    stats: "Stats", perDay: "Per day (UTC), newest first", date: "Date",
    drafts: "Drafts", noDrafts: "No draft waiting.", send: "Send", edit: "Edit", skip: "Skip",
    yourText: "Your text", sendEdited: "Send your text", styleScore: "Style score",
    noScore: "No style score yet: run `twin style eval`.", corrections: "Your corrections",
    noCorrections: "None yet.", mode: "Mode", modeDefault: "as the account",
    mode_auto: "auto", mode_draft: "drafts", mode_off: "off",
    logOut: "Log out of Telegram", confirmLogOut: "Confirm: log out",
    keys: "API keys", keyName: "Key name", scope: "Scope", createKey: "Create the key",
    keyShownOnce: "The new key, shown this once: copy it now.", revoke: "Revoke",
    revoked: "revoked",
  },
  ru: {
    title: "twin", signIn: "Войти", signInLead: "Войдите с ключом администратора или откройте ссылку из `twin app-link`.",
    key: "Ключ администратора", signOut: "Выйти", signOutEverywhere: "Выйти на всех устройствах",
    dashboard: "Обзор", chats: "Чаты", accounts: "Аккаунты", today: "Сегодня",
    received: "получено", replied: "отвечено", skipped: "пропущено", escalated: "передано вам",
    failed: "ошибок", draftsWaiting: "Черновики ждут", activity: "События",
    noActivity: "Пока ничего: новые события появятся здесь сразу.",
    pause: "Пауза", resume: "Продолжить", paused: "на паузе", active: "активен",
    chat: "Чат", state: "Состояние", lastMessage: "Последнее сообщение", noChats: "Чатов пока нет.",
    status: "Статус", name: "Имя", user: "Пользователь", loading: "Загрузка…",
    language: "Язык", wrongKey: "Этот ключ не подошёл.",
    sessionEnded: "Сессия закончилась: войдите снова.",
    connect: "Подключить Telegram", accountName: "Имя аккаунта", phone: "Номер телефона",
    sendCode: "Отправить код", code: "Код входа", verify: "Продолжить",
    password: "Пароль двухэтапной проверки", codeSentBy: "Telegram отправил код ({how}).",
    passwordNeeded: "У аккаунта есть пароль двухэтапной проверки.",
    passwordHint: "У аккаунта есть пароль двухэтапной проверки (подсказка: {hint}).",
    connectedAs: "Подключено: {who}.", retryIn: "Повторите через {s} с.",
    settings: "Настройки", workingHours: "Рабочие часы", timezone: "Часовой пояс", save: "Сохранить",
    saved: "Сохранено: следующее сообщение пойдёт по этим часам.",
    hoursHelp: "Каждый день: интервалы вида 09:00-13:00, 14:00-18:00; пусто — выходной.",
    day_mon: "Понедельник", day_tue: "Вторник", day_wed: "Среда", day_thu: "Четверг",
    day_fri: "Пятница", day_sat: "Суббота", day_sun: "Воскресенье",
    stats: "Статистика", perDay: "По дням (UTC), сначала новые", date: "Дата",
    drafts: "Черновики", noDrafts: "Черновиков нет.", send: "Отправить", edit: "Изменить",
    skip: "Пропустить", yourText: "Ваш текст", sendEdited: "Отправить ваш текст",
    styleScore: "Оценка стиля", noScore: "Оценки стиля пока нет: запустите `twin style eval`.",
    corrections: "Ваши правки", noCorrections: "Пока нет.", mode: "Режим",
    modeDefault: "как у аккаунта", mode_auto: "авто", mode_draft: "черновики", mode_off: "выкл",
    logOut: "Выйти из Telegram", confirmLogOut: "Подтвердить выход",
    keys: "API-ключи", keyName: "Имя ключа", scope: "Доступ", createKey: "Создать ключ",
    keyShownOnce: "Новый ключ, показан один раз: скопируйте его сейчас.", revoke: "Отозвать",
    revoked: "отозван",
  },
};

export const LANGUAGES = Object.keys(WORDS);

export function initialLanguage() {
  const chosen = sessionStorage.getItem("twin-language");  // a UI choice, never a secret
  if (chosen && WORDS[chosen]) return chosen;
  return (navigator.language || "en").toLowerCase().startsWith("ru") ? "ru" : "en";
}

export function translator(language) {
  const words = WORDS[language] || WORDS.en;
  return (key) => words[key] ?? WORDS.en[key] ?? key;
}
