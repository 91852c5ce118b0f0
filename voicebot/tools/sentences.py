"""English sentence templates of the intent layer, in hassil's YAML format (Home Assistant's intent
language: ``(a|b)`` alternatives, ``[optional]`` words, ``{list}`` slots, ``<rule>`` expansions).

Kept as a Python string so the package needs no data files. Slots named ``expression``, ``duration``,
``label``, ``a`` and ``b`` are wildcards: hassil captures the words and ``voicebot.tools.intents``
checks them (a sum must be numbers and operators, a duration a length of time), which is what keeps
"what is love" away from the calculator. Fixed ``slots`` pick the tool's mode (``part: month``).
"""

SENTENCES_YAML = r"""
language: en
intents:
  GetTime:
    data:
      - sentences:
          - "[<can_you>] [tell me] what time is it [<now>]"
          - "what time is it <now>"
          - "<what_is> the [current] time [<now>]"
          - "[the] (current time|time <now>)"
          - "time [<now>]"
          - "<can_you> tell me the [current] time [<now>]"
          - "(do you (know|have)|have you got) the time"
          - "(do you know|[<can_you>] tell me) what time it is [<now>]"
          - "what (is|does) the clock say"
          - "what time do you have"
  GetDate:
    data:
      - sentences:
          - "(<what_is> [the] [current] date|<what_is> today's date|what date is it) [today]"
          - "<can_you> tell me [the|today's] date"
          - "[the|today's] date [today]"
          - "what day is (it|today) [today]"
          - "<what_is> the day [today]"
          - "<what_is> today"
          - "what day of the week is (it|today) [today]"
          - "do you know what day it is [today]"
        slots:
          part: date
      - sentences:
          - "what month is it [now]"
          - "<what_is> the [current] month"
        slots:
          part: month
      - sentences:
          - "what year is it [now]"
          - "<what_is> the [current] year"
        slots:
          part: year
  Calculate:
    data:
      - sentences:
          - "(<what_is>|how much is|calculate|compute|work out|solve) {expression}"
          - "<can_you> (calculate|compute|work out|tell me) {expression}"
          - "what (does|do) {expression} (equal|make|come to|give)"
          - "{expression} (equals|equal|is) [what|how much]"
          - "{expression}"
      - sentences:
          - "add {a} (and|to|plus) {b}"
        slots:
          operation: add
      - sentences:
          - "subtract {a} from {b}"
          - "take {a} (from|away from) {b}"
        slots:
          operation: subtract_from
      - sentences:
          - "multiply {a} (by|and|with|times) {b}"
        slots:
          operation: multiply
      - sentences:
          - "divide {a} (by|into) {b}"
        slots:
          operation: divide
  CalendarFact:
    data:
      - sentences:
          - "how many {unit} (are|is) there in [a|an|one|the] {period}"
          - "how many {unit} (are|is) in [a|an|one|the] {period}"
          - "how many {unit} (in|make|make up) [a|an|one|the] {period}"
          - "how many {unit} (does|do) [a|an|one|the] {period} have"
          - "how many {unit} has [a|an|one|the] {period} [got]"
          - "<what_is> the number of {unit} in [a|an|one|the] {period}"
  SetTimer:
    data:
      - sentences:
          - "[<can_you>] (set|start|create|make|add|put on|begin) [me] [a|an|the|one] timer (for|of|with) {duration}"
          - "[<can_you>] (set|start|create|make|add|put on|begin) [me] [a|an|the|one] {duration} timer"
          - "[<can_you>] (set|start|create|make) [me] [a|an|the] {label} timer for {duration}"
          - "[<can_you>] (set|start|create|make) [me] [a|an|the] timer for {duration} <called> {label}"
          - "[<can_you>] (set|start|create|make) [me] [a|an|the] {duration} timer <called> {label}"
          - "[<can_you>] (set|start) [a|an|the] timer {duration}"
          - "[a|an] timer [for] {duration}"
          - "[a|an] {duration} timer"
          - "[<can_you>] (time|count down) {duration}"
          - "[<can_you>] (wake me [up]|remind me|let me know|tell me) in {duration}"
  TimerStatus:
    data:
      - sentences:
          - "how (long|much time|much longer) [is] (left|remaining|to go) [<on_timer>]"
          - "how much (longer|more time) [is there|is left|do i have] [<on_timer>]"
          - "how (long|much time) (do i have|have i got) left [<on_timer>]"
          - "how (long|much time) until [the|my] [{label}] timer (ends|is done|goes off|rings|finishes)"
          - "<what_is> left <on_timer>"
          - "<what_is> the time left <on_timer>"
          - "[<can_you>] (check|show|list|show me) [me] [the|my|all [of] my|all [of] the] [{label}] timer[s]"
          - "(which|what) timers (are|do i have) [running|set|on|going]"
          - "do i have [any] timers [running|set|on|going]"
          - "(is|are) [the|my] timer[s] [still] (running|going|on)"
          - "time (left|remaining) [<on_timer>]"
          - "[timer|timers] status"
          - "status of [the|my] timer[s]"
  CancelTimer:
    data:
      - sentences:
          - "<cancel> [the|my|this|that|that there] timer"
          - "<cancel> [the|my|this|that] {label} timer"
          - "<cancel> [the|my] timer (called|named|for) {label}"
        slots:
          all: false
      - sentences:
          - "<cancel> (all [of] [the|my] timers|[the|my] timers|every timer|all [of] the timers)"
        slots:
          all: true
  WhatCanYouDo:
    data:
      - sentences:
          - "what [else] can you do [for me]"
          - "what (else) are you able to do"
          - "what are you (able to do|capable of|good at|good for)"
          - "what (are|is) your (skills|abilities|capabilities|features|functions)"
          - "what can i ask [you] [to do|for|about]"
          - "what can you help [me] with"
          - "how can you help [me]"
          - "what do you (do|know how to do)"
          - "what tools do you have"
          - "help [me]"
          - "what (skills|abilities) do you have"
lists:
  expression:
    wildcard: true
  a:
    wildcard: true
  b:
    wildcard: true
  duration:
    wildcard: true
  label:
    wildcard: true
  unit:
    values:
      - in: "(second|seconds)"
        out: seconds
      - in: "(minute|minutes)"
        out: minutes
      - in: "(hour|hours)"
        out: hours
      - in: "(day|days)"
        out: days
      - in: "(week|weeks)"
        out: weeks
      - in: "(month|months)"
        out: months
  period:
    values:
      - in: "(minute|minutes)"
        out: minute
      - in: "(hour|hours)"
        out: hour
      - in: "(day|days)"
        out: day
      - in: "(week|weeks)"
        out: week
      - in: "(fortnight|fortnights)"
        out: fortnight
      - in: "(month|months)"
        out: month
      - in: "(year|years|normal year|regular year|common year|non leap year)"
        out: year
      - in: "(leap year|leap years|leapyear)"
        out: leap year
      - january
      - february
      - march
      - april
      - may
      - june
      - july
      - august
      - september
      - october
      - november
      - december
expansion_rules:
  what_is: "(what is|what's|whats|what are|tell me)"
  can_you: "(can|could|would|will) you [please]"
  called: "(called|named|labelled|labeled|for)"
  now: "(now|right now|at the moment|currently|today|here|please)"
  on_timer: "(on|for|in) [the|my] [{label}] timer[s]"
  cancel: "[<can_you>] [please] (cancel|stop|delete|remove|clear|turn off|switch off|end|kill|reset|dismiss|silence)"
skip_words:
  - "please"
  - "hey"
  - "okay"
  - "ok"
  - "um"
  - "uh"
  - "so"
  - "well"
  - "voicebot"
"""
