"""Small templates shared by the web tests."""

HEADLINE = {
    "name": "Headline", "width": 160, "height": 80, "background": "#ffffff",
    "variables": {"title": {"type": "text"}},
    "layers": [
        {"name": "bar", "type": "rect", "x": 0, "y": 70, "width": 160, "height": 10,
         "fill": "#2563eb"},
        {"name": "title", "type": "text", "x": 4, "y": 4, "width": 152, "height": 60,
         "text": "{{ title }}", "size": 40, "color": "#dc2626"},
    ],
    "sizes": {"wide": {"width": 320, "height": 80, "layers": {"bar": {"width": 320}}}},
}


# a small card with a text and a number variable (the Sheets and file-source tests)
PRICE_CARD = {
    "name": "Card", "width": 160, "height": 80, "background": "#ffffff",
    "variables": {"title": {"type": "text"}, "price": {"type": "number"}},
    "layers": [{"name": "t", "type": "text", "x": 4, "y": 4, "width": 152, "height": 72,
                "text": "{{ title }} {{ price | currency }}", "size": 16,
                "color": "#000000"}],
}
