"""Deterministic filler documents for knowledge-base scale benchmarks.

`filler_documents(n_chunks, seed)` returns (name, Markdown text) documents that together hold
exactly `n_chunks` paragraphs of plausible-looking but irrelevant prose, half the documents in
Russian and half in English: sentences of random words drawn from a vocabulary of about five
thousand word forms (inflected nouns, adjectives and verbs of home, garden, kitchen, office,
travel and culture, plus function words at a natural rate), seeded `random.Random(seed)`.

Each document has a title, a `##` section every five paragraphs and a `###` heading over every
paragraph, so a structure-aware chunker gives one chunk per paragraph at the default budget of
256 tokens: English paragraphs run 40–80 words; Russian ones 30–42 words, as the conservative
token estimate charges a Cyrillic letter half a token. About 50 paragraphs per document.

Nothing here is about bicycles, repairs, rentals, prices or policies, so no filler paragraph
answers a question of the labelled set (tests/knowledge/data); common words still overlap, as
real unrelated documents would. 10,000 paragraphs take well under a second.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

__all__ = ["PARAGRAPHS_PER_DOCUMENT", "filler_documents", "vocabulary"]

PARAGRAPHS_PER_DOCUMENT = 50
SECTION_EVERY = 5
_WORDS = {"ru": (30, 42), "en": (40, 80)}
_SENTENCE = (6, 14)
_FUNCTION_SHARE = 0.3  # of the words drawn


def _split(words: str) -> list[str]:
    return words.split()


# --- Russian ---------------------------------------------------------------------------------

_RU_MASCULINE = _split(
    """
дом сад лес город завод проект отчёт план договор процесс результат вопрос ответ рынок клиент
сотрудник директор бухгалтер документ файл архив сервер пароль телефон компьютер стол стул
шкаф диван балкон подъезд этаж лифт забор огород урожай помидор салат суп борщ пирог торт
рецепт ужин обед завтрак магазин склад товар поставщик бюджет налог кредит вклад банк офис
отдел коллега начальник менеджер проектор экран принтер сканер маршрут билет поезд вокзал
аэропорт самолёт автобус трамвай музей театр концерт фестиваль праздник подарок сувенир
остров берег пляж залив мост замок собор храм памятник парк фонтан дворец век год месяц
вечер рассвет закат дождь снег ветер туман климат урок экзамен студент учитель институт
университет факультет семинар доклад журнал роман рассказ автор писатель художник портрет
пейзаж вид камин чай кофе сахар мёд хлеб сыр творог йогурт фрукт апельсин лимон виноград
персик абрикос горох укроп чеснок лук перец инструмент молоток гвоздь кирпич бетон фасад
подвал чердак коридор кабинет зал хор оркестр спектакль балет сюжет герой персонаж характер
успех опыт талант навык интерес факт закон суд спор совет конкурс турнир матч стадион зритель
гость хозяин сосед друг брат отец дедушка внук ребёнок народ край район регион континент
океан материк полуостров холм овраг луг пруд ручей водопад родник кустарник тюльпан пион
мак ландыш куст корень стебель лист плод сок компот джем соус бульон омлет блин сырник
кекс пряник шоколад орех миндаль изюм банан ананас кокос рис овёс ячмень хмель квас морс
"""
)

_RU_FEMININE = _split(
    """
книга работа задача система программа страница таблица встреча поездка команда компания
дорога улица река гора долина погода весна зима минута секунда лампа ваза картина полка
посуда тарелка чашка ложка вилка рыба капуста морковка свёкла груша слива малина клубника
корзина лопата грядка теплица рассада тыква дыня школа лекция оценка премия зарплата ставка
выплата квартира комната стена крыша лестница остановка граница столица культура история
музыка сцена афиша выставка скульптура легенда карта газета реклама справка анкета папка
ручка бумага сумка куртка шапка рубашка юбка обувь неделя суббота пятница среда семья
бабушка мама сестра дочка подруга соседка хозяйка гостиница столовая кофейня пекарня
булочка котлета каша запеканка окрошка солянка уха пицца паста лазанья ватрушка ягода
трава берёза сосна ель липа ива роза ромашка сирень лаванда мята петрушка кинза тропинка
аллея набережная площадка беседка скамейка клумба ограда калитка веранда терраса
"""
)

_RU_NEUTER = _split(
    """
окно место слово дело письмо число озеро небо блюдо вино пиво мясо молоко утро правило
зеркало одеяло сено золото серебро железо стекло болото облако яблоко общество хозяйство
имущество государство производство строительство искусство кино радио метро пальто кафе
"""
)

_RU_ADJECTIVE = _split(
    """
нов стар красн бел чёрн зелён добр мал важн полезн интересн сложн прост быстр медленн
тёпл холодн светл тёмн чист главн старинн современн кулинарн садов офисн годов месячн
ежедневн вкусн сладк горьк кисл солён длинн коротк широк высок глубок тих громк мягк
тверд лёгк тяжёл удобн уютн спокойн солнечн дождлив ветрен туманн снежн речн лесн полев
цветн деревянн каменн стеклянн бумажн известн любим редк частн семейн северн южн западн
восточн праздничн научн учебн музыкальн театральн
"""
)

_RU_VERB = _split(
    """
читать играть гулять решать делать знать думать помогать отвечать слушать понимать
собирать выбирать начинать получать изучать обсуждать открывать закрывать покупать
отдыхать сажать поливать убирать копать мечтать вспоминать встречать провожать завтракать
обедать ужинать отмечать украшать рассказывать показывать составлять выполнять сравнивать
желать сиять сочинять объяснять повторять опаздывать успевать узнавать угадывать наблюдать
планировать путешествовать организовать рисовать фотографировать праздновать танцевать
чувствовать участвовать советовать пробовать
"""
)

_RU_FUNCTION = _split(
    """
и в на с по для из к о от до за при под над без через около после перед между это как что
так уже ещё очень также только всегда часто иногда обычно потом затем поэтому однако который
которая которые его её их наш ваш свой весь каждый другой один два три где когда если чтобы
"""
)

_HUSHING = "гкхжшчщ"
_RU_PLURAL_A = frozenset(_split("дом город лес берег век вечер остров"))  # дома, города, …
_RU_SINGULAR_ONLY = frozenset(_split("стул друг брат лист сахар мёд чай хлеб климат успех опыт"))


def _ru_forms() -> list[str]:
    forms: list[str] = []
    for noun in _RU_MASCULINE:
        last = noun[-1]
        if noun.endswith(("ец", "ок", "ёк", "ень")) or last in "ьйжшчщцаяое":
            forms.append(noun)
            continue
        forms += [noun + e for e in ("", "а", "у", "ом", "е")]
        if noun not in _RU_SINGULAR_ONLY:
            plural = "а" if noun in _RU_PLURAL_A else "и" if last in _HUSHING else "ы"
            forms += [noun + e for e in (plural, "ов", "ам", "ами", "ах")]
    for noun in _RU_FEMININE:
        if noun[-1] != "а":
            forms.append(noun)
            continue
        stem = noun[:-1]
        plural = "и" if stem[-1] in _HUSHING else "ы"
        forms += [stem + e for e in ("а", plural, "е", "у", "ой", "ам", "ами", "ах")]
    for noun in _RU_NEUTER:
        if noun[-1] != "о" or noun in ("кино", "радио", "метро", "пальто"):
            forms.append(noun)
            continue
        stem = noun[:-1]
        forms += [stem + e for e in ("о", "а", "у", "ом", "е", "ам", "ами", "ах")]
    for stem in _RU_ADJECTIVE:
        soft = stem[-1] in "гкх"
        endings = ("ий", "ие", "им", "их") if soft else ("ый", "ые", "ым", "ых")
        forms += [stem + e for e in (*endings, "ая", "ое", "ого", "ой", "ому", "ую")]
    for verb in _RU_VERB:
        past = verb[:-2]
        present = verb[:-5] + "у" if verb.endswith(("овать", "евать")) else past
        forms += [verb] + [present + e for e in ("ю", "ет", "ем", "ете", "ют")]
        forms += [past + e for e in ("л", "ла", "ло", "ли")]
    return list(dict.fromkeys(forms))


# --- English ---------------------------------------------------------------------------------

_EN_NOUN = _split(
    """
house garden forest city factory project report plan contract process result question answer
market client employee director accountant document file archive server password phone
computer table chair cupboard sofa balcony staircase floor elevator fence vegetable harvest
tomato salad soup pie cake recipe dinner lunch breakfast store warehouse product supplier
budget tax loan account bank office department colleague manager projector screen printer
scanner route ticket train station airport plane bus tram museum theatre concert festival
holiday gift souvenir island shore beach bay bridge castle cathedral temple monument park
fountain palace century year month evening sunrise sunset rain snow wind fog climate lesson
exam student teacher institute university faculty seminar lecture journal novel story author
writer artist portrait landscape view fireplace tea coffee sugar honey bread cheese yoghurt
fruit orange lemon grape peach apricot pea dill garlic onion pepper tool hammer nail brick
facade basement attic corridor hall choir orchestra play ballet plot hero character success
experience talent skill interest fact law court debate council contest tournament match
stadium audience guest host neighbour friend brother father grandfather grandson child nation
region continent ocean peninsula hill valley meadow pond stream waterfall spring bush tulip
peony poppy lily root stem leaf juice jam sauce broth omelette pancake biscuit chocolate
almond raisin banana pineapple coconut rice oat barley book task system program page meeting
trip team company road street river mountain weather winter minute second lamp vase picture
shelf plate cup spoon fork fish cabbage carrot beet pear plum raspberry strawberry basket
shovel greenhouse seedling pumpkin melon school grade bonus salary flat room wall roof
stop border capital culture history music stage poster exhibition sculpture legend map
newspaper advert certificate form folder pen paper bag jacket hat shirt skirt week family
grandmother mother sister daughter hotel canteen cafe bakery bun porridge casserole pizza
pasta berry grass birch pine spruce willow rose daisy lilac lavender mint parsley path
alley embankment playground gazebo bench flowerbed gate veranda terrace window place word
letter number lake sky dish wine beer meat milk morning rule mirror blanket hay gold silver
iron glass swamp cloud apple society economy property state industry art cinema radio coat
colour painting village harbour lighthouse canal square library gallery chapter poem song
melody rhythm dancer singer painter chef waiter baker gardener farmer pilot sailor traveller
furniture luggage equipment news information software traffic homework research knowledge
kitchen oven kettle fridge freezer saucepan knife bowl jar bottle napkin recipe ingredient
flour butter cream yeast cinnamon vanilla ginger olive cucumber lettuce radish spinach herb
seed soil compost fertiliser hedge lawn orchard vineyard barn cottage villa apartment studio
desk drawer cabinet calendar schedule deadline invoice presentation spreadsheet inbox agenda
committee partner investor customer consultant engineer architect designer editor reporter
journey voyage passport suitcase map guide tourist excursion cruise ferry port harbour coast
cliff cave glacier desert jungle savanna prairie canyon volcano lagoon reef tide wave storm
breeze thunder lightning rainbow frost dew season spring summer autumn holiday weekend
birthday wedding anniversary ceremony parade carnival fair concert opera symphony sonata
novelist poet philosopher historian scientist inventor explorer emperor queen king prince
"""
)

_EN_VERB = _split(
    """
read play walk solve know think help answer listen understand collect choose start receive
study discuss open close buy rest plant water clean dig dream remember meet visit cook
celebrate decorate tell show compose explain repeat arrive finish learn watch plan travel
organise draw photograph dance feel join advise try paint sing bake grow pick pour slice
stir taste boil fry roast serve invite greet thank describe compare measure count print
publish translate record present prepare gather carry move wait hope agree enjoy follow
"""
)

_EN_ADJECTIVE = _split(
    """
new old red white black green kind small important useful interesting complex simple quick
slow warm cold bright dark clean main ancient modern culinary annual monthly daily tasty sweet
bitter sour salty long short wide tall deep quiet loud soft hard light heavy comfortable cosy
calm sunny rainy windy foggy snowy wooden stone paper famous favourite rare private northern
southern western eastern festive scientific musical theatrical fresh ripe green golden silver
gentle pleasant busy empty crowded narrow broad distant local central rural urban seasonal
fragrant colourful elegant careful curious patient generous friendly honest polite clever
ordinary unusual traditional medieval royal imperial coastal tropical arctic alpine remote
peaceful lively noisy humble proud brave gloomy cheerful delicate rough smooth shiny dusty
crispy creamy spicy juicy crunchy bitter mild huge tiny ancient recent early late nearby
"""
)

_EN_FUNCTION = _split(
    """
the a an of to in on at for with from by and or but as that which this these those it its
their our your very also only often usually then however because while during after before
between about into over is are was were be has have had will would can could may
"""
)


_EN_UNCOUNTABLE = frozenset(
    _split(
        """
    tea coffee sugar honey bread cheese yoghurt rice gold silver iron glass hay milk meat wine
    beer fog snow rain jam broth garlic dill music history culture weather economy art grass
    porridge mint parsley lavender lilac chocolate climate experience success talent advice
    furniture luggage equipment news information software traffic homework research knowledge
    """
    )
)
_EN_PLURAL = {"leaf": "leaves", "shelf": "shelves", "child": "children", "knife": "knives"}


def _en_plural(noun: str) -> str | None:
    if noun in _EN_UNCOUNTABLE:
        return None
    if noun in _EN_PLURAL:
        return _EN_PLURAL[noun]
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _en_verb(verb: str) -> list[str]:
    irregular = {
        "read": ["reads", "read", "reading"],
        "know": ["knows", "knew", "known", "knowing"],
        "think": ["thinks", "thought", "thinking"],
        "understand": ["understands", "understood", "understanding"],
        "choose": ["chooses", "chose", "chosen", "choosing"],
        "buy": ["buys", "bought", "buying"],
        "dig": ["digs", "dug", "digging"],
        "meet": ["meets", "met", "meeting"],
        "tell": ["tells", "told", "telling"],
        "feel": ["feels", "felt", "feeling"],
        "sing": ["sings", "sang", "sung", "singing"],
        "grow": ["grows", "grew", "grown", "growing"],
        "stir": ["stirs", "stirred", "stirring"],
        "plan": ["plans", "planned", "planning"],
        "carry": ["carries", "carried", "carrying"],
        "try": ["tries", "tried", "trying"],
        "fry": ["fries", "fried", "frying"],
        "draw": ["draws", "drew", "drawn", "drawing"],
        "show": ["shows", "showed", "shown", "showing"],
        "travel": ["travels", "travelled", "travelling"],
    }
    if verb in irregular:
        return [verb, *irregular[verb]]
    third = verb + ("es" if verb.endswith(("s", "sh", "ch", "x")) else "s")
    if verb.endswith("ee"):
        return [verb, third, verb + "d", verb + "ing"]
    if verb.endswith("e"):
        return [verb, third, verb + "d", verb[:-1] + "ing"]
    return [verb, third, verb + "ed", verb + "ing"]


def _en_forms() -> list[str]:
    forms: list[str] = []
    for noun in _EN_NOUN:
        plural = _en_plural(noun)
        forms += [noun] if plural is None else [noun, plural]
    for verb in _EN_VERB:
        forms += _en_verb(verb)
    forms += _EN_ADJECTIVE
    return list(dict.fromkeys(forms))


# --- generation ------------------------------------------------------------------------------


class _Language:
    def __init__(self, content: Sequence[str], function: Sequence[str]) -> None:
        self.content = list(content)
        function_weight = _FUNCTION_SHARE / (1 - _FUNCTION_SHARE) * len(content) / len(function)
        self.population = self.content + list(function)
        weights = [1.0] * len(self.content) + [function_weight] * len(function)
        self.cum_weights = list(itertools.accumulate(weights))

    def words(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.population, cum_weights=self.cum_weights, k=k)

    def title(self, rng: random.Random, low: int, high: int) -> str:
        words = rng.sample(self.content, rng.randint(low, high))
        return " ".join(words).capitalize()


_LANGUAGES: dict[str, _Language] = {}


def _language(lang: str) -> _Language:
    if lang not in _LANGUAGES:
        if lang == "ru":
            _LANGUAGES[lang] = _Language(_ru_forms(), _RU_FUNCTION)
        else:
            _LANGUAGES[lang] = _Language(_en_forms(), _EN_FUNCTION)
    return _LANGUAGES[lang]


def vocabulary(lang: str) -> list[str]:
    """The content word forms of one language ("ru" or "en")."""
    return list(_language(lang).content)


def _paragraph(language: _Language, rng: random.Random, low: int, high: int) -> str:
    total = rng.randint(low, high)
    words = language.words(rng, total)
    sentences = []
    start = 0
    while start < total:
        size = rng.randint(*_SENTENCE)
        if total - start - size < _SENTENCE[0]:  # no stub of a sentence at the end
            size = total - start
        piece = words[start : start + size]
        sentence = " ".join(piece)
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
        start += size
    return " ".join(sentences)


def filler_documents(n_chunks: int, seed: int = 0) -> list[tuple[str, str]]:
    """(name, Markdown text) documents holding `n_chunks` irrelevant paragraphs in all, about
    PARAGRAPHS_PER_DOCUMENT each, alternately Russian and English; the same for the same seed."""
    if n_chunks < 0:
        raise ValueError("n_chunks must not be negative")
    rng = random.Random(seed)
    documents: list[tuple[str, str]] = []
    left = n_chunks
    index = 0
    while left > 0:
        count = min(PARAGRAPHS_PER_DOCUMENT, left)
        lang = ("ru", "en")[index % 2]
        language = _language(lang)
        low, high = _WORDS[lang]
        lines = [f"# {language.title(rng, 2, 4)}", ""]
        for number in range(count):
            if number % SECTION_EVERY == 0:
                lines += [f"## {language.title(rng, 2, 3)}", ""]
            lines += [f"### {language.title(rng, 2, 3)}", ""]
            lines += [_paragraph(language, rng, low, high), ""]
        documents.append((f"filler-{seed}-{index:04d}-{lang}.md", "\n".join(lines)))
        left -= count
        index += 1
    return documents
