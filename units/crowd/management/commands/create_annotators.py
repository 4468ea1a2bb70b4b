"""Create annotator accounts in bulk for a lab's own annotators, and print them."""
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from units.crowd.annotators import annotator_qualify, profile_get
from units.projects.models import Project
from units.projects.selectors import project_named


class Command(BaseCommand):
    help = "Create N annotator accounts named <prefix>1..<prefix>N (existing names are skipped) and print them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, required=True, help="how many accounts")
        parser.add_argument("--prefix", default="annotator", help="user names are <prefix><number>")
        parser.add_argument("--password", required=True, help="the password of every new account")
        parser.add_argument("--qualified", action="append", default=[], metavar="PROJECT",
                            help="qualify them for this project, by name or id (no test needed); repeat for several")
        parser.add_argument("--start", type=int, default=1, help="first number (default 1)")

    def handle(self, *args: Any, count: int, prefix: str, password: str, qualified: list[str], start: int,
               **options: Any) -> None:
        if count < 1 or count > 10000:
            raise CommandError("--count must be between 1 and 10000.")
        if not prefix or not prefix.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise CommandError("--prefix must be letters, digits, '-', '_' or '.' (it starts every user name).")
        if len(password) < 8:
            raise CommandError("--password must have at least 8 characters.")
        try:
            projects = [project_named(name) for name in qualified]
        except Project.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        User = get_user_model()
        created = []
        with transaction.atomic():
            for number in range(start, start + count):
                username = f"{prefix}{number}"
                if User.objects.filter(username=username).exists():
                    self.stderr.write(f"skipped {username}: the name is taken")
                    continue
                user = User.objects.create_user(username=username, password=password)
                profile_get(user)
                for project in projects:
                    annotator_qualify(user=user, project=project)
                created.append(username)
        self.stdout.write("username\tpassword\tqualified for")
        names = ", ".join(p.name for p in projects) or "-"
        for username in created:
            self.stdout.write(f"{username}\t{password}\t{names}")
        self.stdout.write(self.style.SUCCESS(f"{len(created)} annotator account(s) created."))
