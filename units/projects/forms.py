"""Forms of the project pages."""
from django import forms

from .models import Role


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class InviteForm(forms.Form):
    who = forms.CharField(max_length=254, label="User name or e-mail")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.REQUESTER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class DeleteForm(forms.Form):
    confirm_name = forms.CharField(max_length=100, label="Type the project's name to delete it")
