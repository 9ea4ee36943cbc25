"""Form fields of the model's own columns. Only Django here: models/fields.py imports this module for
its fields' formfield(), so it must not import the models (nor forms.py, which does)."""
from django import forms


class PercentStepsFormField(forms.CharField):
    """Canary steps typed as "5, 25, 50, 100" (spaces or commas); the model validates the list."""
    widget = forms.TextInput(attrs={"placeholder": "off; e.g. 5, 25, 50, 100"})

    def prepare_value(self, value):
        return ", ".join(str(p) for p in value) if isinstance(value, list) else value

    def to_python(self, value):
        words = super().to_python(value).replace(",", " ").split()
        try:
            return [int(word) for word in words]
        except ValueError:
            raise forms.ValidationError("canary steps are whole percentages, e.g. 5, 25, 50, 100") from None
