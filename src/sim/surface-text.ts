// Small pieces shared by the Responses and Messages renderers of both flavours:
// a plan's surface state, the text a choice produced, tool inputs as objects.

import type { Plan, PlanChoice, SurfacePlan } from './flavor.ts';

/** The Responses / Messages state of a plan. */
export function surfaceOf(plan: Plan): SurfacePlan {
  // Set by the planner for every Responses / Messages plan.
  return plan.surface as SurfacePlan;
}

/** The content and reasoning text of a choice, each joined from its tokens. */
export function choiceText(choice: PlanChoice): { content: string; reasoning: string } {
  let content = '';
  let reasoning = '';
  for (const piece of choice.pieces) {
    if (piece.kind === 'content') content += piece.text;
    else if (piece.kind === 'reasoning') reasoning += piece.text;
  }
  return { content, reasoning };
}

/** A tool call's arguments as the object Anthropic's `input` holds ({} when they do not parse). */
export function toolInput(argumentsText: string): unknown {
  try {
    const value: unknown = JSON.parse(argumentsText);
    return typeof value === 'object' && value !== null ? value : {};
  } catch {
    return {};
  }
}
