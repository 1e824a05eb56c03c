using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;

namespace IsolateGrains.Protocol;

/// <summary>
/// Finds which fields of a lambda's closure the lambda actually uses, by reading its IL. The C#
/// compiler puts every local captured in a scope into one closure object, so a lambda's target often
/// also holds values other lambdas captured (the runtime itself, a logger, <c>this</c>): only the
/// fields the lambda reads or writes, through nested closures and local functions too, are sent.
/// </summary>
internal static class ClosureFields
{
    private static readonly Dictionary<short, OpCode> s_opCodes = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>
    /// The fields of compiler-generated closure types that <paramref name="method"/> uses, by declaring
    /// type; null when the IL could not be read (then every field is sent).
    /// </summary>
    public static Dictionary<Type, HashSet<FieldInfo>>? Find(MethodInfo method)
    {
        var used = new Dictionary<Type, HashSet<FieldInfo>>();
        var visited = new HashSet<MethodBase>();
        return Scan(method, used, visited) ? used : null;
    }

    /// <summary>
    /// True for the classes the compiler generates for lambdas: <c>&lt;&gt;c__DisplayClass…</c> holds captured
    /// variables, <c>&lt;&gt;c</c> is the singleton behind lambdas that capture nothing.
    /// </summary>
    public static bool IsClosureType(Type type) =>
        type.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false) && type.Name.StartsWith("<>c", StringComparison.Ordinal);

    private static bool Scan(MethodBase method, Dictionary<Type, HashSet<FieldInfo>> used, HashSet<MethodBase> visited)
    {
        if (!visited.Add(method))
        {
            return true;
        }
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
        {
            return false;
        }
        var typeArguments = method.DeclaringType?.IsGenericType == true ? method.DeclaringType.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        var position = 0;
        while (position < il.Length)
        {
            short value = il[position++];
            if (value == 0xFE)
            {
                if (position >= il.Length)
                {
                    return false;
                }
                value = unchecked((short)(0xFE00 | il[position++]));
            }
            if (!s_opCodes.TryGetValue(value, out var opCode))
            {
                return false;
            }
            var operandStart = position;
            position += OperandSize(opCode.OperandType, il, position);
            if (opCode.OperandType is not (OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineType) || operandStart + 4 > il.Length)
            {
                continue;
            }
            var token = BitConverter.ToInt32(il, operandStart);
            try
            {
                if (opCode.OperandType == OperandType.InlineField)
                {
                    var field = method.Module.ResolveField(token, typeArguments, methodArguments);
                    // Static fields of closure types are the compiler's caches of nested lambdas, not captured values.
                    if (field is { IsStatic: false, DeclaringType: { } owner } && IsClosureType(owner))
                    {
                        Add(used, owner, field);
                    }
                    else if (field?.DeclaringType is { } machine && !ScanStateMachine(machine, method, used, visited))
                    {
                        return false;
                    }
                }
                else if (opCode.OperandType == OperandType.InlineType)
                {
                    if (method.Module.ResolveType(token, typeArguments, methodArguments) is { } type && !ScanStateMachine(type, method, used, visited))
                    {
                        return false;
                    }
                }
                else if (method.Module.ResolveMethod(token, typeArguments, methodArguments) is { } callee)
                {
                    // Local functions and nested lambdas see the closure too; so does the state machine of an async lambda.
                    if (IsCompilerGenerated(callee, method) && !Scan(callee, used, visited))
                    {
                        return false;
                    }
                    if (callee.DeclaringType is { } declaring && !ScanStateMachine(declaring, method, used, visited))
                    {
                        return false;
                    }
                }
            }
            catch (Exception e) when (e is ArgumentException or MissingMemberException or BadImageFormatException)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// The body of an async lambda (or iterator) lives in the MoveNext of a compiler-generated state
    /// machine, which reaches the closure through a field: scan it as part of the lambda.
    /// </summary>
    private static bool ScanStateMachine(Type type, MethodBase caller, Dictionary<Type, HashSet<FieldInfo>> used, HashSet<MethodBase> visited)
    {
        if (type.Module != caller.Module || !type.Name.StartsWith('<') || IsClosureType(type))
        {
            return true;
        }
        var moveNext = type.GetMethod("MoveNext", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic, Type.EmptyTypes);
        return moveNext is null || Scan(moveNext, used, visited);
    }

    private static void Add(Dictionary<Type, HashSet<FieldInfo>> used, Type owner, FieldInfo field)
    {
        // Key by the generic type definition's field so lookups work for any instantiation.
        if (!used.TryGetValue(owner, out var fields))
        {
            used[owner] = fields = [];
        }
        fields.Add(field);
    }

    private static bool IsCompilerGenerated(MethodBase callee, MethodBase caller) =>
        callee.Name.StartsWith('<') && callee.Module == caller.Module && callee.GetMethodBody() is not null;

    private static int OperandSize(OperandType type, byte[] il, int position) => type switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        OperandType.InlineSwitch => position + 4 <= il.Length ? 4 + 4 * BitConverter.ToInt32(il, position) : il.Length,
        _ => 4,
    };
}
