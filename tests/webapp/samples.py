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
