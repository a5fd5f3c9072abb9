// The app's words in English and Russian (words/*.js). `t(key)` picks the chosen language (a
// switch in the header; else the owner's language once signed in; else the browser's),
// falling back to English for a word another language lacks.
import en from "./words/en.js";
import ru from "./words/ru.js";

const WORDS = { en, ru };

export const LANGUAGES = Object.keys(WORDS);

// A language the owner chose in this tab (a UI choice, never a secret), if any.
export function chosenLanguage() {
  const chosen = sessionStorage.getItem("twin-language");
  return chosen && WORDS[chosen] ? chosen : null;
}

export function browserLanguage() {
  return (navigator.language || "en").toLowerCase().startsWith("ru") ? "ru" : "en";
}

export function translator(language) {
  const words = WORDS[language] || WORDS.en;
  return (key) => words[key] ?? WORDS.en[key] ?? key;
}
